/* A shared object that is not a Sluice plugin, with a constructor that writes MARKER when the library is opened:
 * the host must never open it. The variants name the entry symbol without defining an exported function.
 *   (default)        no entry symbol at all
 *   ENTRY_UNDEFINED  the entry symbol only referenced (undefined in its dynamic symbol table)
 *   ENTRY_AS_DATA    the entry symbol exported as a variable, not a function */
#include <stdio.h>
#include "sluice.h"

#ifndef MARKER
#error "compile with -DMARKER='\"/path/of/marker\"'"
#endif

__attribute__((constructor)) static void leave_mark(void) {
    FILE *file = fopen(MARKER, "w");
    if (file) {
        fputs("constructor ran\n", file);
        fclose(file);
    }
}

#if defined(ENTRY_UNDEFINED)
extern const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version);
SLUICE_EXPORT sluice_entry_fn uses_entry(void) { return sluice_plugin_entry_v1; }
#elif defined(ENTRY_AS_DATA)
SLUICE_EXPORT int sluice_plugin_entry_v1 = 1;
#else
SLUICE_EXPORT int not_a_plugin(void) { return 42; }
#endif
