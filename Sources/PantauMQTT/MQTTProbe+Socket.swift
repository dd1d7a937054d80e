import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

extension MQTTProbe {
    static func resolve(host: String, port: Int) -> Result<[ResolvedAddress], MQTTError> {
        TCPConnect.resolve(host: host, port: port).mapError {
            MQTTError(code: .resolve, message: "cannot resolve \(host): \($0.reason)")
        }
    }

    /// Tries each address with a non-blocking connect bounded by `timeoutMs`.
    static func connectTCP(_ addresses: [ResolvedAddress], port: Int, timeoutMs: Int) -> ProbeStep {
        var failures: [String] = []
        for address in addresses {
            if let failure = connectTCP(address, timeoutMs: timeoutMs) {
                failures.append("\(address.text):\(port) \(failure)")
            } else {
                return ProbeStep(name: "tcp", ok: true, detail: "connected to \(address.text):\(port)")
            }
        }
        return ProbeStep(name: "tcp", ok: false, detail: failures.joined(separator: "; "))
    }

    /// nil on success, else the reason.
    private static func connectTCP(_ address: ResolvedAddress, timeoutMs: Int) -> String? {
        switch TCPConnect.connect(address, timeoutMs: timeoutMs) {
        case .success(let fd):
            close(fd)
            return nil
        case .failure(let error) where error.errno == ETIMEDOUT:
            return "no answer within \(timeoutMs) ms (firewall or wrong port?)"
        case .failure(let error):
            return error.reason
        }
    }
}
