import ArgumentParser
import BundleCore
import ExtensionHost
import Foundation
import ManifestV2

/// `extctl`: pack, sign, verify and publish extension bundles, and manage installs.
///
/// Exit status: 0 on success, 1 when the input is refused (the error code and message go to
/// stderr), 2 on a usage error.
@main
struct Extctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extctl",
        abstract: "Pack, sign, verify, publish, install, cache and run extension bundles (bundle.tar.zst).",
        subcommands: [
            Pack.self, Unpack.self, Inspect.self, Hash.self, Keygen.self, Sign.self, Verify.self, Store.self, ManifestCommand.self,
            Publish.self, Install.self, Enable.self, Disable.self, Uninstall.self, ListCommand.self, Resolve.self, CacheCommand.self, Run.self,
        ]
    )

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as HostError {
            Console.error("error: \(error.summary)")
            for (key, value) in error.details.sorted(by: { $0.key < $1.key }) { Console.error("  \(key): \(value)") }
            for issue in error.issues { Console.error("  \(issue.path): \(issue.message)") }
            Foundation.exit(1)
        } catch let error as any ExtBundlesError {
            Console.error("error: \(error.summary)")
            // EXTCTL_DEBUG=1 adds every context field (for bug reports; may name paths and keys).
            if ProcessInfo.processInfo.environment["EXTCTL_DEBUG"] == "1" { Console.error(error.debugDescription) }
            Foundation.exit(1)
        } catch let error as RefusedInput {
            Console.error("error: \(error.message)")
            Foundation.exit(1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)  // --help, --version
            }
            if code == .validationFailure {
                Console.error(fullMessage(for: error))
                Foundation.exit(2)
            }
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
            Console.error("error: \(error)")
            Foundation.exit(1)
        }
    }
}

/// Input refused for a reason that has no library error type (exit status 1).
struct RefusedInput: Error {
    var message: String
}

/// Every line `extctl` prints goes through here: control characters (line breaks and tabs too),
/// ANSI escapes and invisible format characters from hostile names are escaped, never sent to
/// the terminal raw, so no input can forge a line of output.
enum Console {
    static func error(_ text: String) {
        // Library errors escape what they quote; escape what is still raw, not their escapes again.
        FileHandle.standardError.write(Data(("extctl: " + Printable.escape(text, escapingBackslashes: false) + "\n").utf8))
    }

    /// One line of output.
    static func out(_ text: String) {
        print(Printable.escape(text))
    }

    /// A block shown as text (a manifest): its line breaks and tabs are kept, everything else
    /// non-printable is escaped.
    static func block(_ text: String) {
        print(Printable.escape(text, keepingLayout: true))
    }

    /// Prints `value` as pretty JSON with sorted keys (the `--json` output of every command).
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // The encoder escapes control characters; what else is not printable gets JSON's own
        // `\uXXXX` escapes, so the output stays JSON that any parser reads.
        print(Printable.escapeJSON(String(decoding: try encoder.encode(value), as: UTF8.self)))
    }
}
