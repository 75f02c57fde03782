import Foundation
import Testing
import TestSupport

@Suite struct SigningCommandTests {
    func packedSample(_ scratch: Scratch) throws -> String {
        _ = try TestSupport.makeSampleTree(at: scratch("ext"))
        let pack = try extctl("pack", scratch("ext"), "-o", scratch("b.tar.zst"), "--level", "3")
        #expect(pack.status == 0)
        return scratch("b.tar.zst")
    }

    @Test(arguments: ["ed25519", "p256"])
    func keygenSignVerify(_ algorithm: String) throws {
        let scratch = try Scratch("cli-sign")
        let bundle = try packedSample(scratch)
        let keygen = try extctl("keygen", "--algorithm", algorithm, "-o", scratch("key.pem"))
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let keyID = String(keygen.stdout.prefix { $0 != " " })
        #expect(keyID.hasPrefix("sha256:") && keyID.count == 71)
        #expect(try extctl("keygen", "-o", scratch("key.pem")).status == 1)  // never overwrites a key
        // openssl reads our key files.
        try TestSupport.sh("openssl pkey -in key.pem -noout && openssl pkey -pubin -in key.pub.pem -noout", cwd: scratch.path)

        let unsignedUnderTrust = try extctl("verify", bundle, "--trust-bundle", scratch("key.pub.pem"))
        #expect(unsignedUnderTrust.status == 1)
        #expect(unsignedUnderTrust.stderr.contains("SIGNATURE_MISSING"))
        let permissive = try extctl("verify", bundle)
        #expect(permissive.status == 0)
        #expect(permissive.stdout.contains("signature: unverified"))

        let sign = try extctl("sign", bundle, "--key", scratch("key.pem"))
        #expect(sign.status == 0, "\(sign.stderr)")
        let verified = try extctl("verify", bundle, "--trust-bundle", scratch("key.pub.pem"), "--json")
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("\"signers\" : [\n    \"\(keyID)\"\n  ]"))
        // Trust from the environment, as SIGNING_TRUST_BUNDLE (a path, or the PEM inline).
        let pem = try String(contentsOfFile: scratch("key.pub.pem"), encoding: .utf8)
        #expect(try extctl("verify", bundle, environment: ["SIGNING_TRUST_BUNDLE": pem]).status == 0)
        #expect(try extctl("verify", bundle, environment: ["SIGNING_TRUST_BUNDLE": scratch("key.pub.pem")]).status == 0)

        // A second key adds a second signature; the first key alone still verifies.
        #expect(try extctl("keygen", "--algorithm", algorithm, "-o", scratch("two.pem")).status == 0)
        #expect(try extctl("sign", bundle, "--key", scratch("two.pem")).status == 0)
        let file = try String(contentsOfFile: bundle + ".sig", encoding: .utf8)
        #expect(file.components(separatedBy: "\"keyId\"").count == 3)
        #expect(try extctl("verify", bundle, "--trust-bundle", scratch("key.pub.pem")).status == 0)

        // A flipped byte, a wrong expected hash, and a signature of another bundle are refused.
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: bundle)))
        bytes[bytes.count / 2] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: scratch("flipped.tar.zst")))
        let flipped = try extctl("verify", scratch("flipped.tar.zst"), "--signature", bundle + ".sig", "--trust-bundle", scratch("key.pub.pem"))
        #expect(flipped.status == 1)
        let wrongHash = try extctl("verify", bundle, "--expect-hash", String(repeating: "0", count: 64))
        #expect(wrongHash.status == 1)
        #expect(wrongHash.stderr.contains("VERIFY_HASH_MISMATCH"))
    }

    @Test func opensslKeysAndSignaturesWorkWithExtctl() throws {
        let scratch = try Scratch("cli-openssl")
        let bundle = try packedSample(scratch)
        try TestSupport.sh(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem && openssl pkey -in ec.pem -pubout -out ec.pub",
            cwd: scratch.path)
        // openssl's key, our signature, openssl's check of it.
        #expect(try extctl("sign", bundle, "--key", scratch("ec.pem"), "-o", scratch("ours.sig")).status == 0)
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch("ours.sig")))) as? [String: Any]
        let entry = try #require((document?["signatures"] as? [[String: Any]])?.first)
        let text = try #require(entry["signature"] as? String)
        let der = try #require(Data(base64Encoded: text))
        try der.write(to: URL(fileURLWithPath: scratch("ours.der")))
        try TestSupport.sh("openssl dgst -sha256 -verify ec.pub -signature ours.der b.tar.zst", cwd: scratch.path)
        // openssl's signature as cosign prints it (bare base64 DER) verifies with us.
        try TestSupport.sh("openssl dgst -sha256 -sign ec.pem b.tar.zst | base64 -w0 > cosign.sig", cwd: scratch.path)
        let result = try extctl("verify", bundle, "--signature", scratch("cosign.sig"), "--trust-bundle", scratch("ec.pub"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("signed by: sha256:"))
        // Malformed inputs are typed refusals.
        try Data("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n".utf8).write(to: URL(fileURLWithPath: scratch("bad.pem")))
        let badTrust = try extctl("verify", bundle, "--trust-bundle", scratch("bad.pem"))
        #expect(badTrust.status == 1)
        #expect(badTrust.stderr.contains("TRUST_BUNDLE_INVALID"))
        try Data("@@@".utf8).write(to: URL(fileURLWithPath: scratch("bad.sig")))
        let badSignature = try extctl("verify", bundle, "--signature", scratch("bad.sig"))
        #expect(badSignature.status == 1)
        #expect(badSignature.stderr.contains("SIGNATURE_MALFORMED"))
    }
}
