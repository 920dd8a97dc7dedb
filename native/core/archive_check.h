// Integrity of a TorchScript archive before libtorch reads it. The archive is a zip whose records are
// stored uncompressed, and libtorch 1.13 does not check their CRC-32: an archive with bytes flipped inside a
// weight record loaded and returned logits around 1e23. check_archive walks the zip's central directory and
// compares each stored record's CRC-32 with its data, streaming (one buffer, whatever the archive's size).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace ts {

// Reads n bytes at offset into buf; false if the source ends before.
using ReadAt = std::function<bool(uint64_t offset, char* buf, size_t n)>;

// Throws ERR_MODEL_LOAD naming `what` ("model 'x.pt'") and the record when a stored record's data does not
// match its CRC-32 or lies outside the archive. Returns quietly when the source is not a zip it can parse
// (libtorch then says what it is not) and for compressed records (their check is the inflater's).
void check_archive(uint64_t size, const ReadAt& read, const std::string& what);

}  // namespace ts
