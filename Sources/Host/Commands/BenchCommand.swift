// `refrain bench`: prompt-processing and decode speed in tokens per second, as llama-bench measures them
// (pp: one batch of N tokens into an empty cache; tg: N tokens decoded one at a time from an empty cache),
// median of several runs, plus resident memory.
import Engine
import Foundation

/// Resident set size now, in bytes (from /proc/self/statm).
func residentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let f = s.split(separator: " ")
    return f.count > 1 ? (Int(f[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

/// Peak resident set size of this process, in bytes.
func peakResidentBytes() -> Int {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return u.ru_maxrss * 1024
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

/// Deterministic token ids spread over the vocabulary (llama-bench uses random ones).
func benchTokens(_ n: Int, vocab: Int) -> [Int32] {
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    return (0..<n).map { _ in
        x = x &* 6364136223846793005 &+ 1442695040888963407
        return Int32((x >> 33) % UInt64(min(vocab, 32000)))
    }
}

func benchCommand(_ o: BenchCommand) throws {
    if o.sample != nil {
        guard o.controlVectors.isEmpty else { throw UsageError(description: "--sample measures no control vectors (give them without --sample)") }
        return try strategyBench(o)
    }
    let runs = o.runs, pp = o.pp ?? 128, tg = o.tg ?? 128
    // --context N: decode after N tokens already in the cache (filled untimed), to see how decode grows with context.
    let context = o.context
    let threadList = try (o.threads ?? "1,2").split(separator: ",").map { s -> Int in
        guard let t = Int(s), t >= 1 else { throw UsageError(description: "--threads expects a list like 1,2") }
        return Threads.warnAbove(t)
    }
    let rssBefore = residentBytes()
    let m = try LanguageModel(path: try modelFile(o.model), threads: 1)
    let rssLoaded = residentBytes()
    let vocab = m.config.vocabularySize
    // With control vectors, every cache measured is computed under them (the cost of an intervention).
    let steering = try m.checked(try o.controlVectors.interventions(for: m))
    var results: [[String: Any]] = []
    for t in threadList {
        let tr = Transformer(weights: m.weights, threads: t)
        if o.exact { tr.precision = .exact }
        let tokens = benchTokens(max(pp, tg, context), vocab: vocab)
        // One warm-up of each, so page faults on the mapped weights are not timed.
        _ = tr.forward(Array(tokens.prefix(max(1, min(pp, 16)))), cache: tr.makeCache(maxPositions: 64))
        var ppRates: [Double] = [], tgRates: [Double] = []
        // The context is filled once (timed apart: prompt processing at that length) and rewound after each run.
        var contextCache: KVCache? = nil
        var fillSeconds = 0.0
        if context > 0 && tg > 0 {
            let cache = tr.makeCache(maxPositions: context + tg)
            cache.intervene(steering)
            fillSeconds = timed { _ = tr.forward(Array(tokens.prefix(context)), cache: cache, logits: .none) }
            contextCache = cache
        }
        for _ in 0..<runs {
            if pp > 0 {
                let cache = tr.makeCache(maxPositions: pp)
                cache.intervene(steering)
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = tr.forward(Array(tokens.prefix(pp)), cache: cache, logits: .last)
                ppRates.append(Double(pp) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
            }
            if tg > 0 {
                let cache = contextCache ?? tr.makeCache(maxPositions: tg)
                if contextCache == nil { cache.intervene(steering) }
                cache.rewind(to: context)
                let t0 = DispatchTime.now().uptimeNanoseconds
                for i in 0..<tg { _ = tr.forward([tokens[i]], cache: cache, logits: .last) }
                tgRates.append(Double(tg) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
            }
        }
        results.append(["threads": t, "pp": pp, "tg": tg, "context": context, "pp_tps": median(ppRates), "tg_tps": median(tgRates),
                        "pp_runs": ppRates, "tg_runs": tgRates, "context_fill_seconds": fillSeconds])
    }
    let summary: [String: Any] = [
        "model": m.file.path, "file_bytes": m.file.fileSize, "runs": runs, "results": results,
        "interventions": steering?.list.count ?? 0,
        "rss_after_load_bytes": rssLoaded, "rss_before_load_bytes": rssBefore, "peak_rss_bytes": peakResidentBytes(),
    ]
    if o.json { printJSON(summary); return }
    print("model: \(m.file.path) (\(m.file.fileSize / 1_048_576) MiB), median of \(runs) runs")
    for r in results {
        print(String(format: "threads %d: pp%d %8.1f tok/s   tg%d %8.1f tok/s%@", r["threads"] as! Int, pp,
                     r["pp_tps"] as! Double, tg, r["tg_tps"] as! Double, context > 0 ? String(format: " (after %d tokens, filled in %.1f s)", context, r["context_fill_seconds"] as! Double) : ""))
    }
    print(String(format: "resident: %.1f MiB after load (%.1f MiB before), peak %.1f MiB",
                 Double(rssLoaded) / 1_048_576, Double(rssBefore) / 1_048_576, Double(peakResidentBytes()) / 1_048_576))
}

/// Seconds `body` takes.
func timed(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// `refrain bench --sample N`: the strategy workloads. (a) `sample(prompt, N)` against N separate `generate` calls
/// (prefix cache off, so each evaluates the prompt; and on, where calls 2..N reuse it), every sequence decoding
/// exactly --tg tokens (end of generation ignored); (b) a call whose prompt shares a --prefix token prefix with the
/// previous call, against the same call cold.
func strategyBench(_ o: BenchCommand) throws {
    let n = o.sample ?? 8, runs = o.runs
    let pp = o.pp ?? 128, tg = o.tg ?? 64, prefix = o.prefix
    let threads = try (o.threads ?? "2").split(separator: ",").map { s -> Int in
        guard let t = Int(s), t >= 1 else { throw UsageError(description: "--threads expects a list like 1,2") }
        return Threads.warnAbove(t)
    }
    var results: [[String: Any]] = []
    for t in threads {
        let m = try LanguageModel(path: try modelFile(o.model), threads: t)
        if o.exact { m.transformer.precision = .exact }
        let vocab = m.config.vocabularySize
        let prompt = benchTokens(pp, vocab: vocab)
        var opts = GenerationOptions()
        opts.maxTokens = tg
        opts.ignoreEOS = true
        opts.sampling.temperature = 0.8
        _ = try m.generate(Array(prompt.prefix(16)), options: opts)      // warm-up: page in the weights
        var sampleT: [Double] = [], coldT: [Double] = [], warmT: [Double] = []
        for _ in 0..<runs {
            m.prefixCacheEntries = 0
            coldT.append(try timed {
                for i in 0..<n { var oi = opts; oi.sampling.seed = UInt64(i); _ = try m.generate(prompt, options: oi) }
            })
            sampleT.append(try timed { _ = try m.sample(prompt: prompt, n: n, options: opts) })
            m.prefixCacheEntries = 4
            warmT.append(try timed {
                for i in 0..<n { var oi = opts; oi.sampling.seed = UInt64(i); _ = try m.generate(prompt, options: oi) }
            })
        }
        // Prefix reuse: the first call evaluates `prefix` tokens plus a question; the second shares the prefix and
        // asks another question. Timed: the second call, warm (cache on) and cold (cache off).
        let head = benchTokens(prefix + 64, vocab: vocab)
        let first = Array(head.prefix(prefix)) + Array(head.suffix(32)), second = Array(head.prefix(prefix + 32))
        var one = GenerationOptions()
        one.maxTokens = 1
        one.ignoreEOS = true
        var prefixWarm: [Double] = [], prefixCold: [Double] = []
        var cached = 0
        for _ in 0..<runs {
            m.prefixCacheEntries = 0
            prefixCold.append(try timed { _ = try m.generate(second, options: one) })
            m.prefixCacheEntries = 4
            _ = try m.generate(first, options: one)
            prefixWarm.append(try timed { cached = try m.generate(second, options: one).cachedTokens })
        }
        results.append(["threads": t, "n": n, "prompt": pp, "max_tokens": tg,
                        "sample_s": median(sampleT), "separate_cold_s": median(coldT), "separate_warm_s": median(warmT),
                        "ratio_cold": median(sampleT) / median(coldT), "ratio_warm": median(sampleT) / median(warmT),
                        "prefix": prefix, "second_prompt": second.count, "cached": cached,
                        "second_warm_s": median(prefixWarm), "second_cold_s": median(prefixCold),
                        "sample_runs": sampleT, "separate_cold_runs": coldT, "separate_warm_runs": warmT])
    }
    let summary: [String: Any] = ["model": try loadModelPath(o), "runs": runs, "results": results,
                                  "peak_rss_bytes": peakResidentBytes()]
    if o.json { printJSON(summary); return }
    print("model: \(summary["model"]!), median of \(runs) runs")
    for r in results {
        print(String(format: "threads %d: sample(%d tokens, %d, max_tokens=%d) %.2f s; %d separate generate calls %.2f s (prefix cache off), %.2f s (on); ratio %.2f / %.2f",
                     r["threads"] as! Int, pp, n, tg, r["sample_s"] as! Double, n, r["separate_cold_s"] as! Double,
                     r["separate_warm_s"] as! Double, r["ratio_cold"] as! Double, r["ratio_warm"] as! Double))
        print(String(format: "threads %d: second call sharing a %d-token prefix (%d tokens, 1 generated): %.3f s with %d cached, %.3f s cold",
                     r["threads"] as! Int, prefix, r["second_prompt"] as! Int, r["second_warm_s"] as! Double,
                     r["cached"] as! Int, r["second_cold_s"] as! Double))
    }
    print(String(format: "peak resident: %.1f MiB", Double(peakResidentBytes()) / 1_048_576))
}

func loadModelPath(_ o: BenchCommand) throws -> String { try modelFile(o.model) }
