/* libffi for Swift: ffi.h plus accessors for the ffi_type globals, which Swift 6 refuses to read directly
 * (they are mutable globals, so not concurrency-safe). */
#ifndef SLUICE_CFFI_SHIM_H
#define SLUICE_CFFI_SHIM_H
#include <ffi.h>

static inline ffi_type *sluice_ffi_sint64(void) { return &ffi_type_sint64; }
static inline ffi_type *sluice_ffi_sint32(void) { return &ffi_type_sint32; }
static inline ffi_type *sluice_ffi_uint8(void) { return &ffi_type_uint8; }
static inline ffi_type *sluice_ffi_double(void) { return &ffi_type_double; }
static inline ffi_type *sluice_ffi_pointer(void) { return &ffi_type_pointer; }
static inline ffi_type *sluice_ffi_void(void) { return &ffi_type_void; }

#endif
