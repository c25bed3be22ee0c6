import CSluice
#if canImport(Glibc)
import Glibc
#endif

extension PluginLoader {
    /// Checks a plugin file before `dlopen` runs any of it (its constructors run on opening): it must be a regular
    /// file that passes `PluginFilePermissions` (or `allowInsecure` is set) and an ELF shared object for this
    /// machine whose dynamic symbol table defines the entry symbol. Reads the file with plain reads only.
    ///
    /// - Returns: the permission problems of a file loaded anyway because `allowInsecure` is set; empty when none.
    static func checkBeforeOpening(_ path: String, allowInsecure: Bool, searchDirectory: String?)
        throws(PluginLoadError) -> [String]
    {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else {
            throw PluginLoadError(.notSharedObject, path: path, cause: "cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw PluginLoadError(.notSharedObject, path: path, cause: "cannot be examined: \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw PluginLoadError(.notSharedObject, path: path, cause: "is not a regular file")
        }
        let problems = PluginFilePermissions.problems(path: path, file: status, alsoDirectory: searchDirectory)
        if !problems.isEmpty && !allowInsecure {
            throw PluginLoadError(
                .insecure,
                path: path,
                cause: "insecure: " + problems.joined(separator: "; ")
                    + " (others could replace it; fix the owner or mode, or pass --allow-insecure-plugins)"
            )
        }
        let exported: Bool
        do {
            let file = try ELFFile(descriptor: descriptor, size: UInt64(status.st_size))
            exported = try ELFSymbolTable(file).exportsFunction(SLUICE_ENTRY_SYMBOL)
        } catch {
            throw PluginLoadError(.notSharedObject, path: path, cause: "not a loadable shared object: \(error)")
        }
        guard exported else {
            throw PluginLoadError(
                .missingEntry,
                path: path,
                cause: "no entry symbol '\(SLUICE_ENTRY_SYMBOL)' in its dynamic symbol table (not a Sluice plugin, "
                    + "or built without the SDK export); not opened"
            )
        }
        return problems
    }
}
