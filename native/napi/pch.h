// Precompiled header for the Node-API layer.
#pragma once
#include <napi.h>
#include "core/pch.h"
