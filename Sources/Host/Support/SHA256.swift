// SHA-256 (FIPS 180-4) for `m.info.sha256`: Foundation on Linux has no digest, and one file's hash does not
// justify a crypto package.
import Foundation

enum SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    /// The digest of `data` as 64 lowercase hex digits. Works on raw pointers (no per-block arrays or bounds
    /// checks): a model file of 100 MB takes a fraction of a second, which the run store pays once per file.
    static func hex(_ data: Data) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        let n = data.count
        // The tail: the last partial block, 0x80, zeros, and the bit length, padded to whole blocks.
        var tail = [UInt8](data.suffix(n % 64))
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for i in (0..<8).reversed() { tail.append(UInt8(truncatingIfNeeded: (UInt64(n) * 8) >> (UInt64(i) * 8))) }
        let w = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
        defer { w.deallocate() }
        k.withUnsafeBufferPointer { kp in
            h.withUnsafeMutableBufferPointer { hp in
                func block(_ p: UnsafePointer<UInt8>) {
                    for t in 0..<16 {
                        w[t] = UInt32(p[t &* 4]) << 24 | UInt32(p[t &* 4 &+ 1]) << 16 | UInt32(p[t &* 4 &+ 2]) << 8 | UInt32(p[t &* 4 &+ 3])
                    }
                    for t in 16..<64 {
                        let s0 = rotr(w[t &- 15], 7) ^ rotr(w[t &- 15], 18) ^ (w[t &- 15] >> 3)
                        let s1 = rotr(w[t &- 2], 17) ^ rotr(w[t &- 2], 19) ^ (w[t &- 2] >> 10)
                        w[t] = w[t &- 16] &+ s0 &+ w[t &- 7] &+ s1
                    }
                    var (a, b, c, d, e, f, g, hh) = (hp[0], hp[1], hp[2], hp[3], hp[4], hp[5], hp[6], hp[7])
                    for t in 0..<64 {
                        let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ kp[t] &+ w[t]
                        let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                        (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
                    }
                    hp[0] &+= a; hp[1] &+= b; hp[2] &+= c; hp[3] &+= d
                    hp[4] &+= e; hp[5] &+= f; hp[6] &+= g; hp[7] &+= hh
                }
                data.withUnsafeBytes { all in
                    guard let base = all.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
                    var off = 0
                    while off + 64 <= n { block(base + off); off += 64 }
                }
                tail.withUnsafeBufferPointer { t in
                    var off = 0
                    while off < t.count { block(t.baseAddress! + off); off += 64 }
                }
            }
        }
        return h.map { String(format: "%08x", $0) }.joined()
    }

    // Masking shifts: the checked `>>` and `<<` branch on the shift amount, which costs more than the rest.
    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { x &>> n | x &<< (32 &- n) }
}
