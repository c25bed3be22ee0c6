import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Credentials and TLS: without them a request gets 401 and no detail; a token or a basic user gets in; the health
/// probes stay open; off loopback the server will not start without credentials; HTTPS answers with the given
/// certificate.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct SecurityTests {
    static let token = "s3cret-token-0123456789abcdef"

    /// `contents` in a file readable by its owner only.
    static func secretFile(_ directory: URL, _ name: String, _ contents: String, mode: Int = 0o600) throws -> URL {
        let file = directory.appendingPathComponent(name)
        try contents.write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
        return file
    }

    /// GET over a plain socket (URLSession in Swift 6.3.1 hangs on a 401 that carries a challenge): the status, the
    /// body and the `WWW-Authenticate` headers.
    static func get(_ server: ServeProcess, _ path: String, authorization: String?) async throws -> (Int, String, [String]) {
        let port = UInt16(server.base.port!)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "cannot connect to \(server.base)")
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let authorization { request += "Authorization: \(authorization)\r\n" }
        request += "\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        let text = String(decoding: answer, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts[0].components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ")[1]) ?? 0
        let challenges = head.filter { $0.lowercased().hasPrefix("www-authenticate:") }
            .map { String($0.dropFirst("www-authenticate:".count)).trimmingCharacters(in: .whitespaces) }
        return (status, parts.dropFirst().joined(separator: "\r\n\r\n"), challenges)
    }

    @Test func requestsNeedAValidTokenOrUserAndProbesStayOpen() async throws {
        let data = try temporaryDirectory("sluice-auth")
        defer { try? FileManager.default.removeItem(at: data) }
        let tokens = try Self.secretFile(data, "tokens", "# operators\n\(Self.token)\n")
        let passwords = try Self.secretFile(data, "passwords", "admin:correct horse battery\n")
        let server = try ServeProcess(
            dataDirectory: data.appendingPathComponent("serve"),
            arguments: ["--token-file", tokens.path, "--password-file", passwords.path]
        )
        let basic = { (user: String, password: String) in "Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }

        for authorization in [nil, "Bearer wrong-token-0123456789abcdef", "Bearer \(Self.token)x", basic("admin", "wrong"), basic("root", "correct horse battery"), "Token \(Self.token)"] {
            let (status, body, challenge) = try await Self.get(server, "/batches", authorization: authorization)
            #expect(status == 401, "\(authorization ?? "no credentials")")
            #expect(body == #"{"msg":"authentication required"}"#, "no detail: \(body)")
            // One challenge per header: browsers read only the first scheme of a combined one.
            #expect(challenge == [#"Basic realm="sluice""#, #"Bearer realm="sluice""#])
        }
        #expect(try await Self.get(server, "/batches", authorization: "Bearer \(Self.token)").0 == 200)
        #expect(try await Self.get(server, "/batches", authorization: basic("admin", "correct horse battery")).0 == 200)
        #expect(try await Self.get(server, "/health", authorization: nil).0 == 200)
        #expect(try await Self.get(server, "/ready", authorization: nil).0 == 200)

        // The client commands take the token from a file.
        let client = try ServerClientTests.sluice(["status", "--token-file", tokens.path], server: server)
        #expect(client.status == 0 && client.output.hasPrefix("ID"), "\(client.output)\(client.errors)")

        let refused = try ServerClientTests.sluice(["status"], server: server)
        let message = refused.errors
        #expect(refused.status == 1)
        #expect(message.contains("the server answered 401: authentication required (give --token-file)"), "\(message)")
    }

    @Test func theServerRefusesBadCredentialFilesAndAnOpenAddressWithoutThem() throws {
        let data = try temporaryDirectory("sluice-auth-refusals")
        defer { try? FileManager.default.removeItem(at: data) }
        let readable = try Self.secretFile(data, "tokens", "\(Self.token)\n", mode: 0o644)
        let short = try Self.secretFile(data, "short", "abc\n")
        for (arguments, message) in [
            (["--address", "0.0.0.0:0"], "--address 0.0.0.0:0 is reachable from other machines"),
            (["--token-file", readable.path], "other users may read it (mode 644); chmod 600 it"),
            (["--token-file", short.path], "\(short.path):1: a token must be at least 16 characters long"),
            (["--tls-cert", readable.path], "--tls-cert and --tls-key go together"),
        ] {
            let (status, _, text) = try ServerClientTests.sluice(["serve", "--data-dir", data.appendingPathComponent("serve").path] + arguments)
            #expect(status != 0, "\(arguments)")
            #expect(text.contains(message), "\(arguments): \(text)")
            #expect(!text.contains(Self.token), "the token never appears: \(text)")
        }
    }

    @Test func httpsAnswersWithTheGivenCertificate() throws {
        let data = try temporaryDirectory("sluice-tls")
        defer { try? FileManager.default.removeItem(at: data) }
        let certificate = data.appendingPathComponent("cert.pem")
        let key = data.appendingPathComponent("key.pem")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key.path, "-out", certificate.path,
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0, "openssl could not make a certificate")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)

        let server = try ServeProcess(dataDirectory: data.appendingPathComponent("serve"), arguments: ["--tls-cert", certificate.path, "--tls-key", key.path])
        #expect(server.base.scheme == "https")
        // Python's ssl module verifies the chain against the certificate and the host name (IP SAN).
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = [
            "python3", "-c",
            """
            import ssl, sys, urllib.request
            context = ssl.create_default_context(cafile=sys.argv[2])
            answer = urllib.request.urlopen(sys.argv[1] + "/health", context=context, timeout=30)
            print(answer.status, answer.read().decode())
            """,
            server.base.absoluteString, certificate.path,
        ]
        let output = Pipe()
        python.standardOutput = output
        try python.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        #expect(python.terminationStatus == 0)
        #expect(text.hasPrefix("200 "), "\(text)")
    }
}
