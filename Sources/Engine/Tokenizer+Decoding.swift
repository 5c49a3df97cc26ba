// Token ids → text, as llama.cpp's `token_to_piece` renders each token: whole (`decode`) or one token at a time
// (`TokenStreamDecoder`, which holds back an incomplete UTF-8 character).

extension Tokenizer {
    /// The bytes a token stands for, as llama.cpp's `token_to_piece` renders it.
    ///
    /// Control and unknown tokens render as their text when `special` is true and as nothing otherwise;
    /// user-defined tokens always render as their text; unused entries render as nothing.
    /// Out-of-range ids render as nothing.
    public func piece(_ id: Int32, special: Bool = false) -> [UInt8] {
        guard id >= 0 && Int(id) < kinds.count else { return [] }
        let text = tokenBytes[tokenOffsets[Int(id)]..<tokenOffsets[Int(id) + 1]]
        switch kinds[Int(id)] {
        case .control, .unknown:
            return special ? Array(text) : []
        case .userDefined:
            return Array(text)
        case .normal:
            return model == .spm ? unescapeSpaces(text) : decodeGPT2(text)
        case .byte:
            if model == .spm { return byteValue(text).map { [$0] } ?? [] }
            return []
        case .unused, .undefined:
            return []
        }
    }

    /// Concatenates the tokens' pieces and decodes them as UTF-8, replacing invalid sequences with U+FFFD.
    public func decode(_ ids: [Int32], special: Bool = false) -> String {
        var bytes = [UInt8]()
        for id in ids { bytes.append(contentsOf: piece(id, special: special)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A decoder for tokens arriving one at a time, which yields only complete UTF-8 characters.
    public func makeStreamDecoder(special: Bool = false) -> TokenStreamDecoder {
        TokenStreamDecoder(tokenizer: self, special: special)
    }

    private func unescapeSpaces(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8](); out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == 0xE2, i + 2 < text.endIndex, text[i + 1] == 0x96, text[i + 2] == 0x81 {
                out.append(0x20); i += 3
            } else {
                out.append(text[i]); i += 1
            }
        }
        return out
    }

    /// GPT-2 characters back to bytes; a character outside the mapping is kept as its UTF-8.
    private func decodeGPT2(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8](); out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            let b0 = text[i]
            let len = min(b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4, text.endIndex - i)
            var v = UInt32(b0)
            if len == 2 { v = (v & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F) }
            if len == 3 { v = (v & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F) }
            if let b = byteDecoding[v], len <= 2 { out.append(b) } else { out.append(contentsOf: text[i..<i + len]) }
            i += len
        }
        return out
    }

    /// The byte of a `<0xXX>` entry.
    private func byteValue(_ text: ArraySlice<UInt8>) -> UInt8? {
        guard text.count == 6 else { return text.count == 1 ? text.first : nil }
        return UInt8(String(decoding: text.dropFirst(3).prefix(2), as: UTF8.self), radix: 16)
    }
}

/// Turns tokens arriving one at a time into text, holding back the bytes of a UTF-8 character that is not yet
/// complete until the tokens that complete it arrive. Make one with ``Tokenizer/makeStreamDecoder(special:)``.
public struct TokenStreamDecoder {
    let tokenizer: Tokenizer
    let special: Bool
    var pending: [UInt8] = []

    /// Adds a token; returns the text that is now complete (possibly empty).
    public mutating func push(_ id: Int32) -> String {
        pending.append(contentsOf: tokenizer.piece(id, special: special))
        let keep = TokenStreamDecoder.incompleteTail(pending)
        if keep == pending.count { return "" }
        let ready = pending[..<(pending.count - keep)]
        let text = String(decoding: ready, as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Ends the stream: returns what is still held, invalid bytes replaced with U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many trailing bytes form the valid start of a UTF-8 character still missing bytes.
    static func incompleteTail(_ b: [UInt8]) -> Int {
        let n = b.count
        var i = n - 1
        // Find the last lead byte among the final three.
        while i >= 0 && i >= n - 3 && b[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0, i >= n - 3 else { return 0 }
        let lead = b[i]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return 0
        }
        let have = n - i
        guard have < need else { return 0 }
        // The second byte's range depends on the lead (no overlongs, surrogates or values past U+10FFFF).
        if have >= 2 {
            let c = b[i + 1]
            let ok: Bool
            switch lead {
            case 0xE0: ok = (0xA0...0xBF).contains(c)
            case 0xED: ok = (0x80...0x9F).contains(c)
            case 0xF0: ok = (0x90...0xBF).contains(c)
            case 0xF4: ok = (0x80...0x8F).contains(c)
            default: ok = true
            }
            if !ok { return 0 }
        }
        return have
    }
}
