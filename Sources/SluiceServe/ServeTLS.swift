public import Foundation

/// The certificate chain and private key `sluice serve` answers HTTPS with (PEM files).
public struct ServeTLS: Sendable {
    public var certificateChain: URL
    public var privateKey: URL

    public init(certificateChain: URL, privateKey: URL) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }
}
