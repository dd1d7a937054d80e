// The runtime floor (issue 17): what a Swift program linked like pantau costs in memory while doing nothing.
// Built by bench/floor/build.sh: with the Swift runtime linked statically (as pantau ships) and dynamically, and with
// or without the C libraries pantau links. It encodes one JSON value (so FoundationEssentials is really linked),
// touches each C library once, starts `threads` idle threads, then sleeps so bench/footprint.py can read its smaps.
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

struct Hello: Encodable { var hello = "world" }

let arguments = CommandLine.arguments
let threads = arguments.count > 1 ? Int(arguments[1]) ?? 0 : 0
let seconds = arguments.count > 2 ? UInt32(arguments[2]) ?? 5 : 5
let json = try JSONEncoder().encode(Hello())
print(String(decoding: json, as: UTF8.self))
#if WITH_C_LIBRARIES
print(String(cString: sqlite3_libversion()), String(cString: yaml_get_version_string()), mosquitto_lib_init(),
      String(cString: modbus_strerror(0)))
#endif
for _ in 0..<threads {
    var thread = pthread_t()
    _ = pthread_create(&thread, nil, { _ in
        while true { sleep(60) }
    }, nil)
}
sleep(seconds)
