import SluiceSDK
import Testing

struct SecretMaskTests {
    static let key = "Qm9yaXNTM2NyZXRLZXkxMjM0NTY3ODkwYWJjZGVm+/Z="

    @Test(arguments: [
        ("connection string: unknown key 'SharedAccessKey:abc'", "connection string: unknown key 'SharedAccessKey:***'"),
        ("Endpoint=sb://h/;SharedAccessKeyName=root;SharedAccessKey=s3cr3t;EntityPath=eh1",
         "Endpoint=sb://h/;SharedAccessKeyName=root;SharedAccessKey=***;EntityPath=eh1"),
        ("token SharedAccessSignature sr=x&sig=AbC%2Fd&se=1&skn=root", "token SharedAccessSignature sr=x&sig=***&se=1&skn=root"),
        ("PASSWORD: hunter22 here", "PASSWORD: *** here"),
        ("accountkey=abc,def", "accountkey=***,def"),
    ])
    func credentialAssignmentsLoseTheirValue(text: String, masked: String) {
        #expect(SecretMask.mask(text) == masked)
    }

    @Test(arguments: [
        "put-token: status 401 (unauthorized)",
        "signature: the token's audience differs",
        "/tmp/sluice-host-6F1C0E8A-4B7D-4C1E-9F7A-0D2B3C4E5F60/p.yaml:4:5: error: x",
        "SharedAccessKeyName=RootManageSharedAccessKey",
        "x86_64-unknown-linux-gnu/debug/libSluiceEventHubsSource.so",
        "design=ok; signal=9",
        "/tmp/sluice-wal-damage-6F1C0E8A-4B7D-4C1E-9F7A-0D2B3C4E5F60/checkpoint/sources/lines/wal-0.log is damaged",
    ])
    func ordinaryTextIsLeftAlone(text: String) {
        #expect(SecretMask.mask(text) == text)
    }

    @Test func knownValuesAreHiddenWhereverTheyAppear() {
        let text = "could not use 'hunter2-long' (hunter2-long)"
        #expect(SecretMask.mask(text, hiding: ["hunter2-long"]) == "could not use '***' (***)")
        // Values too short to mask safely are left, or every "on" would go.
        #expect(SecretMask.mask("on", hiding: ["on"]) == "on")
    }

    @Test func keyShapedWordsAreHiddenAnywhere() {
        #expect(SecretMask.mask("expected an integer, got '\(Self.key)'") == "expected an integer, got '***'")
        #expect(SecretMask.mask("got \(Self.key)!") == "got ***!")
    }
}
