import SluiceEventHubs
import Testing

/// Connection strings and shared access signatures, against the test vector the official SDK produced on the wire.
@Suite(.timeLimit(.minutes(1)))
struct CredentialTests {
    @Test func theRecordedTokenIsReproduced() {
        let sas = SharedAccessSignature(
            audience: "sb://127.0.0.1:15673/eh1/consumergroups/$Default", keyName: "RootManageSharedAccessKey",
            key: "SAS_KEY_VALUE", expiry: 1_795_353_097
        )
        #expect(sas.signature == "jS7jXilNbuRRlr5jkB6bHMYZ4NqVmTQp4fsv5qvmRS4=")
        #expect(
            sas.token
                == "SharedAccessSignature sr=sb%3A%2F%2F127.0.0.1%3A15673%2Feh1%2Fconsumergroups%2F%24Default"
                + "&sig=jS7jXilNbuRRlr5jkB6bHMYZ4NqVmTQp4fsv5qvmRS4%3D&se=1795353097&skn=RootManageSharedAccessKey"
        )
    }

    @Test func aTokenIsParsedAndChecked() throws {
        let sas = SharedAccessSignature(audience: "sb://ns.example/hub", keyName: "reader", key: "k1", expiry: 2_000_000_000)
        let parsed = try SharedAccessSignature(parsing: sas.token)
        #expect(parsed == sas)
        #expect(parsed.isSigned(with: "k1"))
        #expect(!parsed.isSigned(with: "k2"))
        #expect(parsed.covers("sb://ns.example/hub/consumergroups/$default"))
        #expect(parsed.covers("SB://NS.EXAMPLE/HUB"))
        #expect(!parsed.covers("sb://ns.example/hub2"))
        #expect(!"\(parsed)".contains(sas.signature), "the description hides the signature")
        #expect(throws: EventHubsError.self) { try SharedAccessSignature(parsing: "Bearer xyz") }
        #expect(throws: EventHubsError.self) { try SharedAccessSignature(parsing: "SharedAccessSignature sr=a&sig=b") }
    }

    @Test func connectionStrings() throws {
        let portal = try EventHubsConnectionString(
            parsing: "Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0;EntityPath=hub1"
        )
        #expect(portal.host == "myns.servicebus.windows.net" && portal.port == nil)
        #expect(portal.credential == .sharedAccessKey(name: "RootManageSharedAccessKey", key: "c2VjcmV0"))
        #expect(portal.entityPath == "hub1" && !portal.useDevelopmentEmulator)
        #expect(!"\(portal)".contains("c2VjcmV0"), "the key is never shown")

        let emulator = try EventHubsConnectionString(
            parsing: "endpoint=sb://localhost:5673;sharedaccesskeyname=Root;sharedaccesskey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        )
        #expect(emulator.host == "localhost" && emulator.port == 5673 && emulator.useDevelopmentEmulator)
        #expect(emulator.authority == "localhost:5673")

        let signed = try EventHubsConnectionString(parsing: "Endpoint=sb://ns/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y&se=1&skn=z")
        #expect(signed.credential == .sharedAccessSignature("SharedAccessSignature sr=x&sig=y&se=1&skn=z"))
    }

    @Test(arguments: [
        ("SharedAccessKeyName=a;SharedAccessKey=b", "'Endpoint' is missing"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a", "must be given together"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=secret;SharedAccessSignature=SharedAccessSignature x", "not both"),
        ("Endpoint=sb://ns/;SharedAccesKey=secret", "unknown key 'SharedAccesKey'"),
        ("Endpoint=sb://ns:99999/;SharedAccessKeyName=a;SharedAccessKey=b", "invalid port"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=yes", "not true or false"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=b;Endpoint=sb://x/", "given twice"),
    ])
    func badConnectionStringsAreRefusedWithoutShowingSecrets(text: String, words: String) {
        do {
            _ = try EventHubsConnectionString(parsing: text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.kind == .configuration)
            #expect(error.message.contains(words), "\(error.message)")
            #expect(!error.message.contains("secret"), "\(error.message)")
        }
    }
}
