// GGUF reader: maps a model file read-only and validates its header, metadata and tensor table before anything
// trusts an offset in it. Every error names the file and the byte offset where the problem was found.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line description of what is wrong with a GGUF file and where.
public struct GGUFError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let offset: Int
    public let message: String
    public var description: String { "\(path): at byte \(offset): \(message)" }
}

/// The metadata value types of the GGUF format, numbered as in the specification.
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Size in bytes of a fixed-size value; nil for strings and arrays.
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }
}

/// One metadata value. Arrays stay in the mapped file and are decoded on request.
public enum GGUFValue: Sendable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array(GGUFArray)

    /// The value as an integer, for any integer type (nil for others or when it does not fit in `Int`).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a float, for float and integer types.
    public var floatValue: Float? {
        switch self {
        case .float32(let v): return v
        case .float64(let v): return Float(v)
        default: return intValue.map(Float.init)
        }
    }

    public var description: String {
        switch self {
        case .string(let s): return s.count > 60 ? "\"\(s.prefix(57))...\"" : "\"\(s)\""
        case .bool(let b): return String(b)
        case .float32(let v): return String(v)
        case .float64(let v): return String(v)
        case .array(let a): return "[\(a.elementType) × \(a.count)]"
        default: return String(intValue ?? 0)
        }
    }
}

/// An array value, as a view over the mapped bytes of its file. Decoding is lazy: a 150k-entry vocabulary is
/// read only when the tokenizer asks for it.
public struct GGUFArray: @unchecked Sendable {
    public let elementType: GGUFValueType
    public let count: Int
    let base: UnsafeRawPointer   // first element
    let byteCount: Int           // validated extent of all elements
    let owner: AnyObject         // keeps the mapping alive

    /// The elements as strings; nil unless this is an array of strings.
    public func strings() -> [String]? {
        guard elementType == .string else { return nil }
        var out = [String](); out.reserveCapacity(count)
        var p = 0
        for _ in 0..<count {
            let n = Int(base.loadUnaligned(fromByteOffset: p, as: UInt64.self))
            let bytes = UnsafeRawBufferPointer(start: base + p + 8, count: n)
            out.append(String(decoding: bytes, as: UTF8.self))
            p += 8 + n
        }
        return out
    }

    /// The raw bytes of each string element (for vocabularies whose entries need not be valid UTF-8).
    public func byteStrings() -> [[UInt8]]? {
        guard elementType == .string else { return nil }
        var out = [[UInt8]](); out.reserveCapacity(count)
        var p = 0
        for _ in 0..<count {
            let n = Int(base.loadUnaligned(fromByteOffset: p, as: UInt64.self))
            out.append(Array(UnsafeRawBufferPointer(start: base + p + 8, count: n)))
            p += 8 + n
        }
        return out
    }

    /// The elements as integers, for any integer element type (or bool); nil otherwise.
    public func ints() -> [Int]? {
        guard let size = elementType.fixedSize, elementType != .float32, elementType != .float64 else { return nil }
        return (0..<count).map { i -> Int in
            let o = i * size
            switch elementType {
            case .uint8, .bool: return Int(base.load(fromByteOffset: o, as: UInt8.self))
            case .int8: return Int(base.load(fromByteOffset: o, as: Int8.self))
            case .uint16: return Int(base.loadUnaligned(fromByteOffset: o, as: UInt16.self))
            case .int16: return Int(base.loadUnaligned(fromByteOffset: o, as: Int16.self))
            case .uint32: return Int(base.loadUnaligned(fromByteOffset: o, as: UInt32.self))
            case .int32: return Int(base.loadUnaligned(fromByteOffset: o, as: Int32.self))
            case .uint64: return Int(truncatingIfNeeded: base.loadUnaligned(fromByteOffset: o, as: UInt64.self))
            default: return Int(base.loadUnaligned(fromByteOffset: o, as: Int64.self))
            }
        }
    }

    /// The elements as floats, for float element types (integers are converted); nil for strings and arrays.
    public func floats() -> [Float]? {
        switch elementType {
        case .float32: return (0..<count).map { base.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case .float64: return (0..<count).map { Float(base.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
        default: return ints()?.map(Float.init)
        }
    }
}

/// A tensor's entry in the file's table, with its data's absolute position checked against the file.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// Dimensions, innermost first (ggml's `ne`): a weight of shape `[n_in, n_out]` has rows of `n_in` elements.
    public let dims: [Int]
    public let type: GGMLType
    /// Absolute byte offset of the data in the file.
    public let fileOffset: Int
    public let byteCount: Int
    public var elementCount: Int { dims.reduce(1, *) }
}

/// A GGUF file mapped into memory (read-only, shared with the page cache: weights are never copied).
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: Int
    public let alignment: Int
    public let fileSize: Int
    /// All metadata, keyed by name (`general.architecture`, `tokenizer.ggml.tokens`, ...).
    public private(set) var metadata: [String: GGUFValue] = [:]
    /// Metadata keys in file order.
    public private(set) var metadataKeys: [String] = []
    /// Tensors in file order.
    public private(set) var tensors: [GGUFTensorInfo] = []
    private var tensorIndex: [String: Int] = [:]
    /// Start of the mapping.
    public var base: UnsafeRawPointer { mapping.base }
    private let mapping: Mapping

    static let maxDims = 4
    static let maxNesting = 2

    /// What a non-regular file is, for the error that refuses it.
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a plain file"
        }
    }

    /// Maps and validates the file at `path`.
    /// - Throws: ``GGUFError`` for anything malformed: bad magic, unsupported version, truncation, bad types,
    ///   tensors outside the file or overlapping, sizes that overflow.
    public init(path: String) throws {
        self.path = path
        // Refuse a FIFO, a device or a directory before opening it: opening a FIFO for reading waits for a writer.
        var pre = stat()
        if stat(path, &pre) == 0, (pre.st_mode & S_IFMT) != S_IFREG {
            throw GGUFError(path: path, offset: 0, message: "not a regular file (\(GGUFFile.kind(pre.st_mode)))")
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else {
            throw GGUFError(path: path, offset: 0, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw GGUFError(path: path, offset: 0, message: "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw GGUFError(path: path, offset: 0, message: "not a regular file (\(GGUFFile.kind(st.st_mode)))")
        }
        let size = Int(st.st_size)
        guard size >= 24 else {
            throw GGUFError(path: path, offset: size, message: "truncated file: \(size) bytes is shorter than a GGUF header (24 bytes)")
        }
        guard let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED else {
            throw GGUFError(path: path, offset: 0, message: "cannot map: \(String(cString: strerror(errno)))")
        }
        let mapping = Mapping(base: UnsafeRawPointer(m), length: size, fd: dup(fd), modified: st.st_mtim)
        self.mapping = mapping
        fileSize = size
        var r = Reader(base: mapping.base, size: size, path: path)
        let v: UInt32
        let align: Int
        var metadata: [String: GGUFValue] = [:], metadataKeys: [String] = []
        var tensors: [GGUFTensorInfo] = [], tensorIndex: [String: Int] = [:]
        do {   // the mapping is released by ARC if anything below throws
            let magic = try r.u32()
            guard magic == 0x4655_4747 else {   // "GGUF" little-endian
                throw r.error(at: 0, "bad magic \(Self.hex(magic)): not a GGUF file")
            }
            v = try r.u32()
            guard v == 2 || v == 3 else {
                throw r.error(at: 4, "unsupported GGUF version \(v) (this reader takes versions 2 and 3)")
            }
            let nTensorsAt = r.pos
            let nTensors = try r.u64()
            let nKVAt = r.pos
            let nKV = try r.u64()
            // Each entry takes at least a few bytes: bound counts by what is left before allocating anything.
            guard nKV <= UInt64(size / 13) else { throw r.error(at: nKVAt, "metadata count \(nKV) cannot fit in the file") }
            guard nTensors <= UInt64(size / 24) else { throw r.error(at: nTensorsAt, "tensor count \(nTensors) cannot fit in the file") }

            var alignFound = 32
            for _ in 0..<Int(nKV) {
                let keyAt = r.pos
                let key = try r.string()
                guard !key.isEmpty else { throw r.error(at: keyAt, "empty metadata key") }
                guard metadata[key] == nil else { throw r.error(at: keyAt, "duplicate metadata key '\(key)'") }
                let typeAt = r.pos
                let value = try r.value(type: try r.valueType(), depth: 0, owner: mapping)
                if key == "general.alignment" {
                    guard case .uint32(let a) = value, a > 0, a & (a - 1) == 0 else {
                        throw r.error(at: typeAt, "general.alignment must be a power of two (uint32), got \(value)")
                    }
                    alignFound = Int(a)
                }
                metadata[key] = value
                metadataKeys.append(key)
            }

            align = alignFound
            var infos: [(name: String, dims: [Int], type: GGMLType, rel: Int, bytes: Int, at: Int)] = []
            infos.reserveCapacity(Int(nTensors))
            for _ in 0..<Int(nTensors) {
                let at = r.pos
                let name = try r.string()
                guard tensorIndex[name] == nil else { throw r.error(at: at, "duplicate tensor name '\(name)'") }
                let ndAt = r.pos
                let nd = try r.u32()
                guard nd >= 1, nd <= UInt32(Self.maxDims) else {
                    throw r.error(at: ndAt, "tensor '\(name)' has \(nd) dimensions (1 to \(Self.maxDims) allowed)")
                }
                var dims = [Int]()
                var elements = 1
                for _ in 0..<Int(nd) {
                    let dAt = r.pos
                    let d = try r.u64()
                    guard d >= 1, d <= UInt64(Int.max) else { throw r.error(at: dAt, "tensor '\(name)' has a dimension of \(d)") }
                    let (e, o) = elements.multipliedReportingOverflow(by: Int(d))
                    guard !o else { throw r.error(at: dAt, "tensor '\(name)': element count overflows") }
                    elements = e
                    dims.append(Int(d))
                }
                let tAt = r.pos
                let rawType = try r.u32()
                guard let type = GGMLType(rawValue: rawType) else {
                    throw r.error(at: tAt, "tensor '\(name)' has unknown type \(rawType)")
                }
                guard dims[0] % type.blockSize == 0, let rowBytes = type.rowBytes(dims[0]) else {
                    throw r.error(at: tAt, "tensor '\(name)': row of \(dims[0]) elements is not a whole number of \(type) blocks")
                }
                let (bytes, o) = rowBytes.multipliedReportingOverflow(by: elements / dims[0])
                guard !o, bytes <= size else { throw r.error(at: tAt, "tensor '\(name)': data size overflows or exceeds the file") }
                let offAt = r.pos
                let rel = try r.u64()
                guard rel % UInt64(align) == 0 else {
                    throw r.error(at: offAt, "tensor '\(name)': data offset \(rel) is not a multiple of the alignment \(align)")
                }
                guard rel <= UInt64(size) else { throw r.error(at: offAt, "tensor '\(name)': data offset \(rel) lies past the end of the file") }
                tensorIndex[name] = infos.count
                infos.append((name, dims, type, Int(rel), bytes, offAt))
            }
            let dataStart = (r.pos + align - 1) / align * align
            // Place every tensor in the data section and check the extents neither leave the file nor overlap.
            for t in infos {
                let start = dataStart + t.rel
                guard start <= size, t.bytes <= size - start else {
                    throw r.error(at: t.at, "tensor '\(t.name)' (\(t.type), \(t.bytes) bytes at \(start)) lies past the end of the file (\(size) bytes): truncated file?")
                }
                tensors.append(GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type, fileOffset: start, byteCount: t.bytes))
            }
            let order = tensors.indices.sorted { tensors[$0].fileOffset < tensors[$1].fileOffset }
            for (a, b) in zip(order, order.dropFirst()) where tensors[a].fileOffset + tensors[a].byteCount > tensors[b].fileOffset {
                throw r.error(at: infos[b].at, "tensor '\(tensors[b].name)' overlaps tensor '\(tensors[a].name)'")
            }
        }
        alignment = align
        version = Int(v)
        self.metadata = metadata
        self.metadataKeys = metadataKeys
        self.tensors = tensors
        self.tensorIndex = tensorIndex
    }

    /// The tensor named `name`, if the file has one.
    public func tensor(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// A pointer to a tensor's data in the mapping.
    public func data(_ t: GGUFTensorInfo) -> UnsafeRawPointer { base + t.fileOffset }

    public func string(_ key: String) -> String? {
        if case .string(let s)? = metadata[key] { return s }
        return nil
    }
    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    public func float(_ key: String) -> Float? { metadata[key]?.floatValue }
    public func bool(_ key: String) -> Bool? {
        if case .bool(let b)? = metadata[key] { return b }
        return nil
    }
    public func array(_ key: String) -> GGUFArray? {
        if case .array(let a)? = metadata[key] { return a }
        return nil
    }

    static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }
}

/// Owns the mmap'd bytes; metadata arrays and tensors keep it alive. It keeps the file open, so that a change to
/// the file while it is mapped can be seen (`GGUFFile.checkUnchanged`).
final class Mapping: @unchecked Sendable {
    let base: UnsafeRawPointer
    let length: Int
    let fd: Int32
    let modified: timespec
    init(base: UnsafeRawPointer, length: Int, fd: Int32, modified: timespec) {
        self.base = base; self.length = length; self.fd = fd; self.modified = modified
    }
    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), length)
        if fd >= 0 { close(fd) }
    }
}

/// A mapped model file that was truncated or rewritten in place after it was loaded: its weights are no longer
/// what was loaded, and reading past a truncation would fault (SIGBUS).
public struct ModelFileChanged: Error, CustomStringConvertible {
    public let path: String
    public let sizeThen: Int
    public let sizeNow: Int
    public var description: String {
        let sizes = sizeThen == sizeNow ? "rewritten in place" : "\(sizeThen) bytes then, \(sizeNow) now"
        return "the model file \(path) changed on disk since it was loaded (\(sizes)): load it again"
    }
}

extension GGUFFile {
    /// Throws `ModelFileChanged` when the mapped file's size or modification time is no longer what it was at
    /// load (one fstat). A file deleted or replaced by a rename is not a change: the mapping keeps the old one.
    public func checkUnchanged() throws {
        var st = stat()
        guard mapping.fd >= 0, fstat(mapping.fd, &st) == 0 else { return }
        if Int(st.st_size) != fileSize || st.st_mtim.tv_sec != mapping.modified.tv_sec
            || st.st_mtim.tv_nsec != mapping.modified.tv_nsec {
            throw ModelFileChanged(path: path, sizeThen: fileSize, sizeNow: Int(st.st_size))
        }
    }
}

/// A bounds-checked cursor over the mapped bytes: every read checks the file's end first.
private struct Reader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var pos = 0

    func error(at: Int, _ msg: String) -> GGUFError { GGUFError(path: path, offset: at, message: msg) }

    mutating func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= size - pos else {
            throw error(at: pos, "truncated file: \(what) needs \(n) bytes, \(size - pos) left")
        }
    }
    mutating func fixed<T: FixedWidthInteger>(_: T.Type, _ what: String) throws -> T {
        try need(MemoryLayout<T>.size, what)
        defer { pos += MemoryLayout<T>.size }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: pos, as: T.self))
    }
    mutating func u32() throws -> UInt32 { try fixed(UInt32.self, "a uint32") }
    mutating func u64() throws -> UInt64 { try fixed(UInt64.self, "a uint64") }

    mutating func string() throws -> String {
        let at = pos
        let n = try u64()
        guard n <= UInt64(size - pos) else { throw error(at: at, "string length \(n) runs past the end of the file") }
        defer { pos += Int(n) }
        return String(decoding: UnsafeRawBufferPointer(start: base + pos, count: Int(n)), as: UTF8.self)
    }

    mutating func valueType() throws -> GGUFValueType {
        let at = pos
        let t = try u32()
        guard let vt = GGUFValueType(rawValue: t) else { throw error(at: at, "unknown metadata value type \(t)") }
        return vt
    }

    /// Skips over `count` elements of `type` to validate an array's extent without decoding it.
    mutating func skipElements(_ type: GGUFValueType, _ count: Int, depth: Int) throws {
        if let s = type.fixedSize {
            let (n, o) = count.multipliedReportingOverflow(by: s)
            guard !o else { throw error(at: pos, "array size overflows") }
            try need(n, "an array of \(count) \(type)")
            pos += n
            return
        }
        for _ in 0..<count {
            if type == .string {
                let at = pos
                let n = try u64()
                guard n <= UInt64(size - pos) else { throw error(at: at, "string length \(n) runs past the end of the file") }
                pos += Int(n)
            } else {
                guard depth < GGUFFile.maxNesting else { throw error(at: pos, "arrays nested too deeply") }
                let et = try valueType()
                let at = pos
                let c = try u64()
                guard c <= UInt64(size - pos) else { throw error(at: at, "array count \(c) cannot fit in the file") }
                try skipElements(et, Int(c), depth: depth + 1)
            }
        }
    }

    mutating func value(type: GGUFValueType, depth: Int, owner: AnyObject) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try fixed(UInt8.self, "a uint8"))
        case .int8: return .int8(try fixed(Int8.self, "an int8"))
        case .uint16: return .uint16(try fixed(UInt16.self, "a uint16"))
        case .int16: return .int16(try fixed(Int16.self, "an int16"))
        case .uint32: return .uint32(try u32())
        case .int32: return .int32(try fixed(Int32.self, "an int32"))
        case .uint64: return .uint64(try u64())
        case .int64: return .int64(try fixed(Int64.self, "an int64"))
        case .float32: return .float32(Float(bitPattern: try u32()))
        case .float64: return .float64(Double(bitPattern: try u64()))
        case .bool:
            let at = pos
            let b = try fixed(UInt8.self, "a bool")
            guard b <= 1 else { throw error(at: at, "bool value \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string: return .string(try string())
        case .array:
            let et = try valueType()
            let at = pos
            let c = try u64()
            guard c <= UInt64(size - pos) else { throw error(at: at, "array count \(c) cannot fit in the file") }
            let start = pos
            try skipElements(et, Int(c), depth: depth + 1)
            return .array(GGUFArray(elementType: et, count: Int(c), base: base + start, byteCount: pos - start, owner: owner))
        }
    }
}
