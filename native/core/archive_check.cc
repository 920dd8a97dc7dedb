#include "core/archive_check.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

#include "core/errors.h"

namespace ts {
namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

uint32_t crc_update(uint32_t crc, const unsigned char* p, size_t n) {
  const auto& t = crc_table();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t u64(const unsigned char* p) { return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

struct Entry {
  std::string name;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressed = 0, local = 0;
};

}  // namespace

void check_archive(uint64_t size, const ReadAt& read, const std::string& what) {
  auto corrupt = [&](const std::string& why) {
    throw Error("ERR_MODEL_LOAD", "Cannot load " + what + ": the archive is corrupt (" + why + "); export or copy it again", "model");
  };
  // End of central directory: 22 bytes plus a comment of up to 65535, at the end.
  const uint64_t tail = std::min<uint64_t>(size, 22 + 65535);
  if (tail < 22) return;
  std::vector<unsigned char> end(tail);
  if (!read(size - tail, reinterpret_cast<char*>(end.data()), tail)) return;
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail) - 22; i >= 0; --i) {
    if (u32(&end[i]) == 0x06054b50u) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return;  // not a zip: libtorch's own error says so
  uint64_t count = u16(&end[eocd + 10]);
  uint64_t cd_size = u32(&end[eocd + 12]);
  uint64_t cd_offset = u32(&end[eocd + 16]);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
    // Zip64: the locator just before the record points at the zip64 end of central directory.
    const uint64_t at = size - tail + static_cast<uint64_t>(eocd);
    if (at < 20) return;
    unsigned char loc[20];
    if (!read(at - 20, reinterpret_cast<char*>(loc), 20) || u32(loc) != 0x07064b50u) return;
    unsigned char rec[56];
    if (!read(u64(loc + 8), reinterpret_cast<char*>(rec), 56) || u32(rec) != 0x06064b50u) return;
    count = u64(rec + 32);
    cd_size = u64(rec + 40);
    cd_offset = u64(rec + 48);
  }
  if (cd_offset > size || cd_size > size - cd_offset) corrupt("its central directory lies outside the file: truncated?");
  std::vector<unsigned char> cd(cd_size);
  if (!read(cd_offset, reinterpret_cast<char*>(cd.data()), cd_size)) corrupt("its central directory cannot be read");

  std::vector<Entry> entries;
  size_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > cd.size() || u32(&cd[p]) != 0x02014b50u) corrupt("its central directory is damaged");
    Entry e;
    e.method = u16(&cd[p + 10]);
    e.crc = u32(&cd[p + 16]);
    e.compressed = u32(&cd[p + 20]);
    uint64_t uncompressed = u32(&cd[p + 24]);
    const size_t name_len = u16(&cd[p + 28]), extra_len = u16(&cd[p + 30]), comment_len = u16(&cd[p + 32]);
    e.local = u32(&cd[p + 42]);
    if (p + 46 + name_len + extra_len + comment_len > cd.size()) corrupt("its central directory is damaged");
    e.name.assign(reinterpret_cast<const char*>(&cd[p + 46]), name_len);
    // Zip64 extended information: the 8-byte values replace the 32-bit fields that are all ones, in order.
    for (size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
      const uint16_t id = u16(&cd[x]), len = u16(&cd[x + 2]);
      if (x + 4 + len > p + 46 + name_len + extra_len) break;
      if (id == 0x0001) {
        size_t q = x + 4;
        auto take = [&](uint64_t& field) {
          if (field == 0xFFFFFFFFu && q + 8 <= x + 4 + len) {
            field = u64(&cd[q]);
            q += 8;
          }
        };
        take(uncompressed);
        take(e.compressed);
        take(e.local);
      }
      x += 4 + len;
    }
    entries.push_back(std::move(e));
    p += 46 + name_len + extra_len + comment_len;
  }

  std::vector<char> buf(1 << 20);
  for (const Entry& e : entries) {
    if (e.method != 0) continue;  // compressed: the inflater checks it
    unsigned char local[30];
    if (e.local > size || !read(e.local, reinterpret_cast<char*>(local), 30) || u32(local) != 0x04034b50u)
      corrupt("record '" + e.name + "' has no local header where the directory says");
    const uint64_t start = e.local + 30 + u16(local + 26) + u16(local + 28);
    if (start > size || e.compressed > size - start) corrupt("record '" + e.name + "' runs past the end of the file: truncated?");
    uint32_t crc = 0;
    for (uint64_t done = 0; done < e.compressed;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), e.compressed - done));
      if (!read(start + done, buf.data(), n)) corrupt("record '" + e.name + "' cannot be read");
      crc = crc_update(crc, reinterpret_cast<const unsigned char*>(buf.data()), n);
      done += n;
    }
    if (crc != e.crc) corrupt("record '" + e.name + "' fails its CRC-32 check: stored " + hex(e.crc) + ", data " + hex(crc));
  }
}

}  // namespace ts
