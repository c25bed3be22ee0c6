import CProcessSettings
import SluiceCLI

// One malloc arena for the process instead of glibc's one per thread (up to eight per core): an arena keeps what is
// freed in it, so the batch buffers and tables that the worker threads free and allocate again in turn were held
// once per thread. The word count's peak RSS went from 61 to 57 MiB with no change in time (docs/benchmarks.md).
// The process's choice, made before any thread starts, so it lives here and not in a library.
sluice_use_one_malloc_arena()

await SluiceCommand.start()
