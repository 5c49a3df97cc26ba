// Matrices for Lua: an n-dimensional array of floats in one compact buffer (attention is layers × heads × T × T,
// 10^7 numbers and more, which nested Lua tables would hold at ten times the memory), with views that share it.
//
// Indices are Lua's: 1-based, negative counting from the end. `x[i]` drops the first dimension (a number once one
// dimension is left), `x:get(i, j, ...)` reads one number, `x:slice(dim, from, to)` narrows a dimension,
// `x:select(dim, i)` drops one, `x:sum(dim)` / `x:mean(dim)` / `x:max(dim)` / `x:min(dim)` reduce one (or all),
// `x:totable()` converts, `x:shape()` and `#x` tell the size. A matrix made by `m:attention` also carries fields
// (`layers`, `heads`, `ids`, `tokens`, `dims`) in its user value, read as `att.layers`.
import CLua
import Foundation

/// The floats several matrix views share.
final class FloatStorage {
    var data: [Float]
    init(_ data: [Float]) { self.data = data }
}

/// A strided view over a storage: element (i1, ..., in) (0-based) is data[offset + Σ ik × strides[k]].
final class Matrix {
    let storage: FloatStorage
    let offset: Int
    let shape: [Int]
    let strides: [Int]

    init(storage: FloatStorage, offset: Int, shape: [Int], strides: [Int]) {
        self.storage = storage; self.offset = offset; self.shape = shape; self.strides = strides
    }

    /// A contiguous matrix over `data` (row-major).
    convenience init(_ data: [Float], shape: [Int]) {
        var strides = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        self.init(storage: FloatStorage(data), offset: 0, shape: shape, strides: strides)
    }

    var count: Int { shape.reduce(1, *) }
    var shapeText: String { shape.map(String.init).joined(separator: "×") }

    /// The view with dimension `d` fixed at `i` (0-based) and removed.
    func select(_ d: Int, _ i: Int) -> Matrix {
        var s = shape, st = strides
        s.remove(at: d); st.remove(at: d)
        return Matrix(storage: storage, offset: offset + i * strides[d], shape: s, strides: st)
    }

    /// The view with dimension `d` narrowed to `from..<from + n` (0-based).
    func narrow(_ d: Int, _ from: Int, _ n: Int) -> Matrix {
        var s = shape
        s[d] = n
        return Matrix(storage: storage, offset: offset + from * strides[d], shape: s, strides: strides)
    }

    /// Calls `body` with the storage offset of every element, in row-major order.
    func forEachOffset(_ body: (Int) -> Void) {
        if shape.isEmpty { body(offset); return }
        if shape.contains(0) { return }
        var index = [Int](repeating: 0, count: shape.count)
        var o = offset
        let last = shape.count - 1, n = shape[last], st = strides[last]
        while true {
            for k in 0..<n { body(o + k * st) }
            var d = last - 1
            while d >= 0 {
                index[d] += 1
                o += strides[d]
                if index[d] < shape[d] { break }
                o -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    /// The elements in row-major order.
    func contiguous() -> [Float] {
        var out = [Float](); out.reserveCapacity(count)
        storage.data.withUnsafeBufferPointer { p in forEachOffset { out.append(p[$0]) } }
        return out
    }

    enum Reduction: String { case sum, mean, max, min }

    /// Reduces every element to one number (sum and mean accumulate in Double).
    func reduceAll(_ r: Reduction) -> Double {
        var acc: Double = r == .max ? -.infinity : r == .min ? .infinity : 0
        storage.data.withUnsafeBufferPointer { p in
            forEachOffset { o in
                let v = Double(p[o])
                switch r {
                case .sum, .mean: acc += v
                case .max: acc = Swift.max(acc, v)
                case .min: acc = Swift.min(acc, v)
                }
            }
        }
        return r == .mean ? acc / Double(Swift.max(count, 1)) : acc
    }

    /// Reduces dimension `d` (0-based): the result has the other dimensions, contiguous.
    func reduce(_ d: Int, _ r: Reduction) -> Matrix {
        let n = shape[d], st = strides[d]
        let rest = select(d, 0)
        var out = [Float](); out.reserveCapacity(rest.count)
        storage.data.withUnsafeBufferPointer { p in
            rest.forEachOffset { o in
                var acc: Double = r == .max ? -.infinity : r == .min ? .infinity : 0
                for k in 0..<n {
                    let v = Double(p[o + k * st])
                    switch r {
                    case .sum, .mean: acc += v
                    case .max: acc = Swift.max(acc, v)
                    case .min: acc = Swift.min(acc, v)
                    }
                }
                out.append(Float(r == .mean ? acc / Double(n) : acc))
            }
        }
        return Matrix(out, shape: rest.shape)
    }
}

extension LuaHost {
    /// The matrix methods, in the order help lists them.
    var matrixMethods: [(String, (Arguments, Matrix) throws -> Int32)] {
        [("shape", { a, x in a.lua.push(ids: x.shape.map { Int32(clamping: $0) }); return 1 }),
         ("dim", { a, x in a.lua.push(x.shape.count); return 1 }),
         ("get", matrixGet), ("slice", matrixSlice), ("select", matrixSelect),
         ("sum", { a, x in try self.matrixReduce(a, x, .sum) }), ("mean", { a, x in try self.matrixReduce(a, x, .mean) }),
         ("max", { a, x in try self.matrixReduce(a, x, .max) }), ("min", { a, x in try self.matrixReduce(a, x, .min) }),
         ("totable", { a, x in self.pushTable(x); return 1 }),
         ("layer", matrixLayer)]
    }

    /// Creates the shared `lm.matrix` metatable in the registry: `__index` reads positions (`x[i]`), then methods,
    /// then the fields kept in the user value.
    func installMatrixMetatable() {
        luaL_newmetatable(L, "lm.matrix")
        let mt = lua.absolute(-1)
        lua.field("__gc") { lua_pushcclosure(L, LuaHost.releaseUserdata, 0) }
        lua.newTable()
        let methods = lua.absolute(-1)
        for (name, op) in matrixMethods {
            lua.field(name) {
                pushFunction(name) { [unowned self] lua in
                    let a = Arguments(lua: lua, function: name)
                    return try op(a, try self.matrix(a, 1))
                }
            }
        }
        do {
            // A binding closure with a third upvalue, the methods table (pushFunction makes two).
            bindings.append(("index", { [unowned self] lua in
                let a = Arguments(lua: lua, function: "index")
                let x = try self.matrix(a, 1)
                if lua.type(2) == LUA_TNUMBER {
                    guard !x.shape.isEmpty else { throw LuaError.message("cannot index a matrix with no dimensions") }
                    let i = try self.position(a, 2, size: x.shape[0], what: "index")
                    if x.shape.count == 1 { lua.push(Double(x.storage.data[x.offset + i * x.strides[0]])) }
                    else { self.pushMatrix(x.select(0, i)) }
                    return 1
                }
                lua.pushValue(2)
                if lua_rawget(lua.L, refrain_lua_upvalueindex(3)) != LUA_TNIL { return 1 }  // a method
                lua.pop()
                guard lua_getiuservalue(lua.L, 1, 1) == LUA_TTABLE else { return 0 }
                lua.pushValue(2)
                lua_rawget(lua.L, -2)
                return 1
            }))
            lua_pushlightuserdata(L, Unmanaged.passUnretained(self).toOpaque())
            lua.push(bindings.count - 1)
            lua.pushValue(methods)
            lua_pushcclosure(L, LuaHost.trampoline, 3)
            lua_setfield(L, mt, "__index")
        }
        lua.pop()  // methods
        lua.field("__len") {
            pushFunction("len") { [unowned self] lua in
                let x = try self.matrix(Arguments(lua: lua, function: "len"), 1)
                lua.push(x.shape.first ?? 0); return 1
            }
        }
        lua.field("__tostring") {
            pushFunction("tostring") { [unowned self] lua in
                lua.push(self.describe(try self.matrix(Arguments(lua: lua, function: "tostring"), 1))); return 1
            }
        }
        lua.field("__name", "lm.matrix")
        lua.pop()
    }

    /// `matrix 2×3 {{1, 2, 3}, {4, 5, 6}}`: the shape, and the numbers when there are few.
    func describe(_ x: Matrix) -> String {
        var s = "matrix " + (x.shape.isEmpty ? "(scalar)" : x.shapeText)
        guard x.count <= 64, x.shape.count <= 2 else { return s }
        let v = x.contiguous().map { LuaHost.number($0) }
        if x.shape.count == 1 { return s + " {" + v.joined(separator: ", ") + "}" }
        let cols = x.shape[1]
        s += " {" + (0..<x.shape[0]).map { r in "{" + v[(r * cols)..<((r + 1) * cols)].joined(separator: ", ") + "}" }
            .joined(separator: ", ") + "}"
        return s
    }

    static func number(_ f: Float) -> String {
        f == f.rounded() && abs(f) < 1e7 ? String(Int(f)) : String(format: "%.4g", Double(f))
    }

    /// Pushes a matrix userdata (one user value slot, for fields).
    func pushMatrix(_ x: Matrix) {
        let p = refrain_lua_newuserdatauv(L, MemoryLayout<UnsafeMutableRawPointer?>.size, 1)!
        p.assumingMemoryBound(to: UnsafeMutableRawPointer?.self).pointee = Unmanaged.passRetained(x).toOpaque()
        refrain_luaL_getmetatable(L, "lm.matrix")
        lua_setmetatable(L, -2)
    }

    /// Sets the table at the top as the fields of the matrix below it (pops the table).
    func setMatrixFields() { lua_setiuservalue(L, -2, 1) }

    func matrix(_ a: Arguments, _ i: Int32) throws -> Matrix {
        guard let x = object(i, kind: "lm.matrix", as: Matrix.self) else { throw a.typeError(i, "matrix") }
        return x
    }

    /// A 1-based (or negative, from the end) position at argument `i` in a dimension of `size` → 0-based.
    func position(_ a: Arguments, _ i: Int32, size: Int, what: String) throws -> Int {
        let v = try a.integer(i)
        let k = v < 0 ? size + v : v - 1
        guard k >= 0, k < size else { throw LuaError.argument(i, "\(what) \(v) is out of range (1..\(size))") }
        return k
    }

    /// A dimension number (1-based, negative from the end) at argument `i` → 0-based.
    func dimension(_ a: Arguments, _ i: Int32, _ x: Matrix) throws -> Int {
        guard !x.shape.isEmpty else { throw LuaError.argument(i, "the matrix has no dimensions") }
        return try position(a, i, size: x.shape.count, what: "dimension")
    }

    func matrixGet(_ a: Arguments, _ x: Matrix) throws -> Int32 {
        let n = Int(a.lua.top) - 1
        guard n == x.shape.count else {
            throw LuaError.message("get: the matrix has \(x.shape.count) dimensions (\(x.shapeText)), got \(n) indices")
        }
        var o = x.offset
        for d in 0..<n { o += try position(a, Int32(d + 2), size: x.shape[d], what: "index") * x.strides[d] }
        a.lua.push(Double(x.storage.data[o]))
        return 1
    }

    func matrixSlice(_ a: Arguments, _ x: Matrix) throws -> Int32 {
        let d = try dimension(a, 2, x)
        let from = try position(a, 3, size: x.shape[d], what: "from")
        let to = a.lua.isNoneOrNil(4) ? x.shape[d] - 1 : try position(a, 4, size: x.shape[d], what: "to")
        guard to >= from else { throw LuaError.argument(4, "to (\(to + 1)) is before from (\(from + 1))") }
        pushMatrix(x.narrow(d, from, to - from + 1))
        return 1
    }

    func matrixSelect(_ a: Arguments, _ x: Matrix) throws -> Int32 {
        let d = try dimension(a, 2, x)
        let i = try position(a, 3, size: x.shape[d], what: "index")
        if x.shape.count == 1 { a.lua.push(Double(x.storage.data[x.offset + i * x.strides[0]])) }
        else { pushMatrix(x.select(d, i)) }
        return 1
    }

    func matrixReduce(_ a: Arguments, _ x: Matrix, _ r: Reduction) throws -> Int32 {
        if a.lua.isNoneOrNil(2) || x.shape.count <= 1 {
            if !a.lua.isNoneOrNil(2) { _ = try dimension(a, 2, x) }
            guard x.count > 0 else { throw LuaError.message("\(r.rawValue): the matrix is empty") }
            a.lua.push(x.reduceAll(r))
            return 1
        }
        let d = try dimension(a, 2, x)
        guard x.shape[d] > 0 else { throw LuaError.message("\(r.rawValue): dimension \(d + 1) is empty") }
        pushMatrix(x.reduce(d, r))
        return 1
    }
    typealias Reduction = Matrix.Reduction

    /// `x:layer(l [, h])`: for a matrix whose first dimension is layers (`x.layers` lists them), the part for
    /// model layer `l` (0-based, as the model numbers them), and for one head `h` when `x.heads` lists heads.
    func matrixLayer(_ a: Arguments, _ x: Matrix) throws -> Int32 {
        func find(_ field: String, _ arg: Int32) throws -> Int {
            let want = try a.integer(arg)
            guard lua_getiuservalue(L, 1, 1) == LUA_TTABLE, a.lua.rawGet(-1, field) == LUA_TTABLE else {
                a.lua.pop(2)
                throw LuaError.message("layer: this matrix has no '\(field)' field (only what m:attention, m:hidden and m:logit_lens return has)")
            }
            defer { a.lua.pop(2) }
            let n = a.lua.rawLength(-1)
            var have: [Int] = []
            for k in 1...max(n, 1) where k <= n {
                a.lua.rawGet(-1, k)
                let v = a.lua.integer(-1) ?? -1
                a.lua.pop()
                if v == want { return k - 1 }
                have.append(v)
            }
            let what = field == "layers" ? "layer" : "head"
            throw LuaError.message("layer: \(what) \(want) was not asked for (this matrix has \(what)s \(have.map(String.init).joined(separator: ", ")))")
        }
        let li = try find("layers", 2)
        var y = x.select(0, li)
        if !a.lua.isNoneOrNil(3) { y = y.select(0, try find("heads", 3)) }
        pushMatrix(y)
        return 1
    }

    /// Pushes the matrix as nested tables of numbers.
    func pushTable(_ x: Matrix) {
        if x.shape.isEmpty { lua.push(Double(x.storage.data[x.offset])); return }
        let n = x.shape[0]
        lua.newTable(array: n) {
            if x.shape.count == 1 {
                x.storage.data.withUnsafeBufferPointer { p in
                    for i in 0..<n { lua.element(i + 1) { lua.push(Double(p[x.offset + i * x.strides[0]])) } }
                }
            } else {
                for i in 0..<n { lua.element(i + 1) { pushTable(x.select(0, i)) } }
            }
        }
    }

    /// `lm.matrix(nested_table)`: a matrix from a rectangular nested table of numbers.
    func makeMatrix(_ lua: Lua) throws -> Int32 {
        let a = Arguments(lua: lua, function: "matrix")
        if let x = object(1, kind: "lm.matrix", as: Matrix.self) {      // a copy of a view, contiguous
            pushMatrix(Matrix(x.contiguous(), shape: x.shape)); return 1
        }
        try a.table(1)
        var shape: [Int] = []
        lua.pushValue(1)
        while lua.type(-1) == LUA_TTABLE {
            let n = lua.rawLength(-1)
            guard n > 0 else { lua.pop(); throw LuaError.argument(1, "an empty table has no shape") }
            shape.append(n)
            lua.rawGet(-1, 1)
            lua_rotate(L, -2, 1); lua.pop()
        }
        lua.pop()
        var data: [Float] = []
        data.reserveCapacity(shape.reduce(1, *))
        func read(_ d: Int, _ path: String) throws {
            let n = lua.rawLength(-1)
            guard n == shape[d] else { throw LuaError.argument(1, "not rectangular: \(path) has \(n) elements, expected \(shape[d])") }
            for k in 1...n {
                lua.rawGet(-1, k)
                defer { lua.pop() }
                if d == shape.count - 1 {
                    guard let v = lua.number(-1) else { throw LuaError.argument(1, "\(path)[\(k)] is a \(lua.typeName(-1)), not a number") }
                    data.append(Float(v))
                } else {
                    guard lua.type(-1) == LUA_TTABLE else { throw LuaError.argument(1, "not rectangular: \(path)[\(k)] is a \(lua.typeName(-1))") }
                    try read(d + 1, "\(path)[\(k)]")
                }
            }
        }
        lua.pushValue(1)
        defer { lua.pop() }
        try read(0, "t")
        pushMatrix(Matrix(data, shape: shape))
        lua_rotate(L, -2, 1)   // keep the matrix above the table the defer pops
        return 1
    }
}
