import CSluice

/// The version of this SDK. A host refuses a Swift plugin built with a different SDK major version.
/// `SLUICE_SDK_VERSION` in sluice.h is the one place it is written, so C and Swift plugins agree.
public let sluiceSDKVersion = SLUICE_SDK_VERSION

/// The Swift compiler this code was built with, to major.minor. Swift has no stable ABI on Linux, so a host
/// refuses a Swift plugin built by a different compiler minor version.
public let sluiceSwiftToolchain: String = {
    #if compiler(>=7.0)
    return "swift-7+"
    #elseif compiler(>=6.4)
    return "swift-6.4"
    #elseif compiler(>=6.3)
    return "swift-6.3"
    #elseif compiler(>=6.2)
    return "swift-6.2"
    #elseif compiler(>=6.1)
    return "swift-6.1"
    #else
    return "swift-6.0"
    #endif
}()

/// The build info string a Swift plugin's descriptor carries: `toolchain=swift-6.3;sdk=0.1.0`.
public let sluiceBuildInfo = "toolchain=\(sluiceSwiftToolchain);sdk=\(sluiceSDKVersion)"
