// Help for every `lm` function and method: the Swift bindings' entries in one place here, and the entries Lua code
// registers with `lm.document` (the harness modules in Lua/lm/ register theirs). `help()` lists them,
// `help(lm.generate)`, `help(m.generate)`, `help(lm.stats.auc)` and `help("generate")` show one; `lm.doc(x)`
// returns the text instead of printing it.
import CLua

/// One help entry: the key it is found by, how it is called, what it does, and an example.
struct HelpEntry {
    let key: String
    let usage: String
    let text: String
    let example: String
    /// The first sentence (up to ". "), cut to a line.
    var summary: String {
        let first = text.range(of: ". ").map { String(text[..<$0.lowerBound]) + "." } ?? text
        return first.count <= 64 ? first : String(first.prefix(63)) + "…"
    }
}

enum Help {
    static let entries: [HelpEntry] = [
        HelpEntry(key: "lm.model", usage: "lm.model",
                  text: "The model loaded at start (refrain --model PATH, or the default model), or nil. Every method below can be called on it as m:method(...) or as lm.method(...).",
                  example: "local m = lm.model\nprint(m.info.arch, m.info.layers)"),
        HelpEntry(key: "lm.load", usage: "lm.load(path [, {threads=}]) -> model",
                  text: "Loads another GGUF model: a file path, or a file name under $REFRAIN_HOME/models (with or without .gguf). lm.model is not changed (assign it if you want). Under refrain --sandbox: a model named without a folder from $REFRAIN_HOME/models, a model the host loaded, or a path reading is granted for (--allow-read).",
                  example: "local q = lm.load(\"qwen2.5-coder-0.5b-instruct-q4_k_m\")\nprint(q.info.arch)"),
        HelpEntry(key: "lm.defaults", usage: "lm.defaults",
                  text: "The generation options every generate/sample call starts from; a call's opts override them. The REPL's :set changes them too. Keys: " + GenerationSchema.keys(on: .lua).joined(separator: ", ") + ". help(lm.options) describes each.",
                  example: "lm.defaults.temperature = 0\nlm.defaults.max_tokens = 64"),
        HelpEntry(key: "lm.options", usage: "lm.options",
                  text: "The generation options, by key: each a table {type=, min=, max=, above=, default=, help=, flag=, local_only=} (min is exclusive when above is true; flag is the refrain generate flag; a local_only option is refused by lm.remote's models). It describes the options (lm.remote checks by it); set their values in lm.defaults or a call's opts.\n" + GenerationSchema.options.map { spec in "  \(spec.key) (\(spec.kind.rawValue)\(spec.rangeText.map { ", " + $0 } ?? "")): \(spec.help)" }.joined(separator: "\n"),
                  example: "print(lm.options.top_p.max, lm.options.top_p.help)"),
        HelpEntry(key: "lm.pretty", usage: "lm.pretty(value) -> string",
                  text: "The text the REPL prints for a value: tables with sorted keys, nested tables to a depth of four, cycles marked, long lists and strings folded.",
                  example: "print(lm.pretty({ids = {1, 2, 3}, text = \"hi\"}))"),
        HelpEntry(key: "lm.doc", usage: "lm.doc(function_or_name) -> string",
                  text: "The help text help() prints, as a string (nil when there is none).",
                  example: "print(lm.doc(\"score\"))"),
        HelpEntry(key: "lm.document", usage: "lm.document(value, {name=, usage=, text=, example=}) -> value",
                  text: "Registers help for a function or table written in Lua, so that help(value) and help(name) show it; a name inside a documented table (lm.stats.auc in lm.stats) is listed by help of that table. The harness modules (lm.extract, lm.verify, lm.data, lm.tasks, lm.stats, lm.json, lm.random, lm.progress, lm.plot, lm.analysis, lm.view) document themselves this way.",
                  example: "local function twice(x) return 2 * x end\nlm.document(twice, {name = \"twice\", usage = \"twice(x) -> number\", text = \"Doubles x.\"})\nhelp(twice)"),
        HelpEntry(key: "lm.executable", usage: "lm.executable() -> path",
                  text: "The absolute path of the refrain binary running this script, for starting more refrain processes with os.execute or io.popen (the experiment runner's --workers starts its children this way).",
                  example: "print(lm.executable())"),
        HelpEntry(key: "lm.clock", usage: "lm.clock() -> seconds",
                  text: "A monotonic clock in seconds (with fractions), for timing: differences between two readings are wall time, not CPU time as os.clock gives.",
                  example: "local t = lm.clock()\nlm.generate(\"Hi\", {max_tokens = 8})\nprint(lm.clock() - t)"),
        HelpEntry(key: "lm.http", usage: "lm.http(request_or_list [, {timeout=60, retries=3, concurrency=4, backoff=0.5, api_key_env=}]) -> response or list",
                  text: "HTTP requests, what lm.remote is built on. A request is {url=, method=, body=} (method defaults to POST with a body, GET without; the body is sent as application/json); a list of them is sent up to concurrency at a time. A refused or lost connection, a time-out (timeout seconds for the whole request), 429 or 5xx is retried up to retries times, waiting backoff seconds and twice as long each time after (or what Retry-After says). The response: {status=, body=, attempts=, seconds=}; a request that got no response after its retries raises an error naming it. api_key_env names the environment variable whose value is sent as Authorization: Bearer (it never reaches Lua). http:// requests do not follow redirects (the 3xx is the response). Under refrain --sandbox a request goes out only to a host granted with --allow-net=HOST[:PORT] (as written in the URL: localhost, 127.0.0.1 and [::1] are three grants), an https redirect only to a granted host, and api_key_env needs --allow-env=NAME; otherwise the error names the flag, before any byte is sent.",
                  example: "local r = lm.http({url = \"http://127.0.0.1:8080/v1/models\"}, {retries = 0, timeout = 5})\nprint(r.status, lm.json.decode(r.body).data[1].id)"),
        HelpEntry(key: "lm.fs", usage: "lm.fs",
                  text: "Files: lm.fs.mkdir, lm.fs.lock, lm.fs.cwd. (Reading and writing files is Lua's io library.)",
                  example: "lm.fs.mkdir(\"out/run1\")"),
        HelpEntry(key: "lm.fs.mkdir", usage: "lm.fs.mkdir(path) -> boolean",
                  text: "Makes the folder path and any missing folders above it, like mkdir -p, without a shell (so it works under refrain --sandbox=DIR, where os.execute is blocked): true when it made the folder, false when it was already there; an error when it cannot, or when path is a file. Sandboxed, the folder must lie inside DIR (the path resolved first, as for writing a file): sandbox: writing 'PATH' is outside the sandbox folder DIR.",
                  example: "lm.fs.mkdir(\"results/\" .. os.date(\"%Y-%m-%d\"))"),
        HelpEntry(key: "lm.fs.cwd", usage: "lm.fs.cwd() -> path",
                  text: "The current folder, absolute (what $PWD holds, without reading the environment, which refrain --sandbox refuses).",
                  example: "print(lm.fs.cwd())"),
        HelpEntry(key: "lm.fs.lock", usage: "lm.fs.lock(path) -> true, or false and holder",
                  text: "Takes an exclusive lock (flock) on the file path, made if missing, for the rest of this process: true when this process holds it (taken now or before); false and the holder's note (\"pid N since DATE\", which the holder wrote into the file) when another process does. The kernel releases the lock when the process ends, however it ends, so a killed run leaves no stale lock. The experiment runner locks its --out folder with it. Sandboxed, the file must lie inside the sandbox folder.",
                  example: "local ok, holder = lm.fs.lock(\"out/.lock\")\nif not ok then error(\"out is in use by \" .. holder) end"),
        HelpEntry(key: "lm.grammar", usage: "lm.grammar{grammar= | regex= | choices= | json_schema=} -> gbnf [, schema]",
                  text: "The GBNF grammar (llama.cpp's syntax) a constraint option becomes: what generate, sample and a state's generate match token by token when given the same option, and what lm.remote sends to a llama.cpp server. json_schema is read as llama.cpp's converter reads it (the same grammar, rule for rule); its second value is the schema as JSON text (a Lua table written with its keys sorted, except properties given as a list of {name, schema} pairs, which keep their order). nil when the table holds none of the four. An error names a malformed pattern, schema or grammar and where.",
                  example: "print(lm.grammar{regex = \"[0-9]+\"})\nprint(lm.grammar{json_schema = {type = \"object\", properties = {{\"name\", {type = \"string\"}}, {\"age\", {type = \"integer\", minimum = 0}}}, required = {\"name\", \"age\"}}})"),
        HelpEntry(key: "lm.accepts", usage: "lm.accepts({grammar= | regex= | choices= | json_schema=}, text) -> boolean",
                  text: "Whether text as a whole is a complete sentence of the constraint (matched as generation matches it, byte by byte; needs lm.model for its vocabulary). lm.remote checks a server's constrained output with it.",
                  example: "print(lm.accepts({regex = \"The answer is -?[0-9]+\"}, \"The answer is 42\"))  --> true"),
        HelpEntry(key: "lm.isatty", usage: "lm.isatty(file) -> boolean",
                  text: "Whether a Lua file (io.stdout, io.stderr, io.stdin) or a file descriptor number is a terminal. lm.progress draws only when io.stderr is one.",
                  example: "print(lm.isatty(io.stderr))"),
        HelpEntry(key: "lm.store", usage: "lm.store",
                  text: "The run store: every model call (generate, sample, score, choose, st:generate, remote calls) is recorded in an SQLite database with its prompt, options, seed, outputs, log-probabilities, timings, model sha256, and the labels set here. The database is $REFRAIN_HOME/runs.sqlite, or REFRAIN_STORE=PATH; REFRAIN_STORE=0 or --no-store turns it off. Functions: lm.store.path, run, enabled, label, labels, with, calls, last, put_result, results. On the command line: refrain log, refrain replay CALL.",
                  example: "lm.store.label{experiment = \"demo\", item = 1, strategy = \"plain\"}\nlm.generate(\"2+2=\", {max_tokens = 4})\nprint(lm.store.last(), #lm.store.calls{experiment = \"demo\"})"),
        HelpEntry(key: "lm.store.path", usage: "lm.store.path() -> path or nil",
                  text: "The run store's database file, or nil when the store is off for this process.",
                  example: "print(lm.store.path())"),
        HelpEntry(key: "lm.store.run", usage: "lm.store.run() -> id or nil",
                  text: "This process's run id in the store (the run row is made now if no call made it yet), or nil when the store is off.",
                  example: "print(\"run\", lm.store.run())"),
        HelpEntry(key: "lm.store.enabled", usage: "lm.store.enabled([on]) -> boolean",
                  text: "Whether calls are recorded now; lm.store.enabled(false) pauses the recording and lm.store.enabled(true) resumes it (an error when the store is off for the process). Under refrain --sandbox the recording cannot be paused.",
                  example: "lm.store.enabled(false)\nlm.generate(\"not recorded\", {max_tokens = 2})\nlm.store.enabled(true)"),
        HelpEntry(key: "lm.store.label", usage: "lm.store.label{experiment=, item=, strategy=, injected=, ...} -> previous",
                  text: "Sets the labels recorded with every following call, replacing the current ones (lm.store.label{} clears them); returns the previous labels. experiment, item and strategy are columns the store and refrain log filter by; injected is the string (or list of strings) the strategy put into the prompt; any other name is kept as a free label. Values are strings, numbers or booleans. Under refrain --sandbox an experiment must be the script's own: one no run outside this sandbox (its folder) has calls or results under.",
                  example: "lm.store.label{experiment = \"arith\", item = 3, strategy = \"echo\", injected = {\"Let me repeat the question.\"}}"),
        HelpEntry(key: "lm.store.labels", usage: "lm.store.labels() -> table",
                  text: "The labels in force (a copy).",
                  example: "=lm.store.labels()"),
        HelpEntry(key: "lm.store.with", usage: "lm.store.with(labels, f, ...) -> f(...)",
                  text: "Calls f(...) with labels set over the current ones (the fields given replace theirs, the rest stay), and restores the current labels afterwards, also when f raises an error. Returns what f returns.",
                  example: "lm.store.with({strategy = \"plain\"}, function() return lm.generate(\"1+1=\", {max_tokens = 2}) end)"),
        HelpEntry(key: "lm.store.calls", usage: "lm.store.calls{id=, run=, experiment=, item=, strategy=, kind=, search=, limit=} -> {calls}",
                  text: "Calls read back from the store, oldest first; every field given must match (search is a full-text query over prompts and outputs, limit keeps the newest n). Each call is a table: id, run, kind, backend, model, model_sha256, prompt, prompt_ids, options (with the seed), outputs ({text, ids, finish, logprobs, top, usage} each), result, started (Unix time), seconds, error, experiment, item, strategy, injected, labels. Under refrain --sandbox: only the calls of this sandbox's runs (this run, and earlier runs sandboxed to the same folder).",
                  example: "for _, c in ipairs(lm.store.calls{run = lm.store.run()}) do print(c.id, c.kind, c.outputs[1].text) end"),
        HelpEntry(key: "lm.store.last", usage: "lm.store.last() -> id or nil",
                  text: "The id of the last call this process recorded (what refrain log show and refrain replay take), or nil.",
                  example: "lm.generate(\"Hi\", {max_tokens = 4})\nprint(lm.store.last())"),
        HelpEntry(key: "lm.store.put_result", usage: "lm.store.put_result{experiment=, item=, strategy=, data=} -> boolean",
                  text: "Keeps one finished (item, strategy) result of an experiment in the store (data: its JSON line), replacing an earlier one; false when the store is off or paused. The experiment runner (scripts/experiments/run.lua) writes one per result line, and rebuilds a lost results.jsonl from them. Under refrain --sandbox only for the script's own experiment, and only when this run made calls labelled with that experiment, item and strategy (the host checks its records).",
                  example: "lm.store.put_result{experiment = \"demo\", item = \"1\", strategy = \"g\", data = lm.json.encode{answer = 4}}"),
        HelpEntry(key: "lm.store.results", usage: "lm.store.results{experiment=} -> {{item=, strategy=, data=, run=, calls=}, ...}",
                  text: "The results kept for an experiment with lm.store.put_result, in the order they were written; calls is how many calls the store holds under the result's experiment, item and strategy (0: no call made it, and the experiment runner does not restore it); sandboxed = true marks a result a run under refrain --sandbox wrote, read from outside that sandbox (the runner does not restore it either). Under refrain --sandbox only the script's own experiments.",
                  example: "for _, r in ipairs(lm.store.results{experiment = \"demo\"}) do print(r.item, r.strategy, r.data) end"),
        HelpEntry(key: "info", usage: "m.info",
                  text: "A table describing the model: path, name, arch, layers, heads, kv_heads, head_dim, embedding, feed_forward, context, vocab, file_bytes, types (tensor type -> count), chat_template, bos, eos, and sha256 (computed the first time it is read).",
                  example: "=m.info.vocab, m.info.context"),
        HelpEntry(key: "tokenize", usage: "m:tokenize(text [, {special=false, bos=nil}]) -> {ids}",
                  text: "Token ids of text. special = true parses control tokens written in the text (<|im_start|>); bos = true or false adds BOS or not (nil: as the model file says).",
                  example: "=m:tokenize(\"The capital of France is\")"),
        HelpEntry(key: "detokenize", usage: "m:detokenize(ids [, {special=false}]) -> text",
                  text: "The text of a list of token ids; special = true renders control tokens as their text. An id outside the vocabulary is an error.",
                  example: "=m:detokenize({504, 3575, 282, 4649})"),
        HelpEntry(key: "token", usage: "m:token(id) -> piece",
                  text: "The text of one token id, control tokens included (<|im_end|>).",
                  example: "=m:token(2)"),
        HelpEntry(key: "template", usage: "m:template(messages) -> prompt",
                  text: "The prompt the model's chat template makes of a list of {role=, content=} messages, with the assistant's turn opened.",
                  example: "=m:template({{role = \"user\", content = \"Hi\"}})"),
        HelpEntry(key: "generate", usage: "m:generate(prompt [, opts]) -> result",
                  text: "Continues a prompt: a string (control tokens parsed), a list of token ids, or a list of {role=, content=} messages (rendered by the chat template). opts: max_tokens, temperature (0 is greedy), top_k, top_p, min_p, repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty, seed, stop (a string or a list), logprobs (k alternatives per token), ignore_eos, stream (print text as it comes), on_token = function(piece, info) ... end (info: id, logprob, index, top, entropy; return false to stop). The result: text, ids, logprobs, top and entropy (with logprobs: the alternatives, and the entropy of the model's distribution in nats, per token), finish (\"eos\", \"length\", \"stop\" or \"cancelled\"), usage = {prompt=, completion=, cached=} (cached: prompt tokens whose evaluation an earlier call on the model left in its prefix cache), seconds. Ctrl-C stops it and returns what was generated.",
                  example: "local r = m:generate({{role = \"user\", content = \"What is the capital of France?\"}}, {temperature = 0})\nprint(r.text, r.finish)"),
        HelpEntry(key: "sample", usage: "m:sample(prompt, n [, opts]) -> {result, ...}",
                  text: "n generations from one prompt: the prompt is evaluated once and each sample continues a fork of it, with seeds opts.seed, opts.seed + 1, ... (so the set is reproducible; sample i equals generate with seed opts.seed + i - 1). The samples decode together, one batched step per token, so on_token calls of different samples interleave (info.sample = i says whose); with stream = true they run one after another. Options and results as for generate; usage.cached counts prompt tokens reused from an earlier call.",
                  example: "for i, r in ipairs(m:sample(\"Once upon a time\", 4, {max_tokens = 20, seed = 7})) do print(i, r.text) end"),
        HelpEntry(key: "generate_batch", usage: "m:generate_batch({{prompt=, opts=, n=, labels=}, ...}) -> {result, ...}",
                  text: "Several generations with different prompts, decoded together: each prompt is evaluated in turn, then every step evaluates one token of every unfinished sequence in one batched pass, which on a CPU costs little more than one. Request k without n gives what m:generate(prompt, opts) gives (a result table); with n it gives what m:sample(prompt, n, opts) gives (a list of n results): the same tokens, bit for bit. Each request is recorded in the run store as its own generate or sample call, under its labels when given (lm.store.labels() at the time it was asked). on_token and stream are not supported here. lm.batch runs whole strategies this way.",
                  example: "local rs = m:generate_batch{{prompt = \"2+2=\", opts = {max_tokens = 4}}, {prompt = \"The sky is\", n = 2, opts = {max_tokens = 8, temperature = 0.8, seed = 1}}}\nprint(rs[1].text, rs[2][1].text, rs[2][2].text)"),
        HelpEntry(key: "score", usage: "m:score(prefix, continuation [, {intervene=}]) -> {sum=, mean=, logprobs=, ids=}",
                  text: "Log-probabilities of the continuation's tokens after the prefix. The prefix is a prompt as for generate; the continuation is text (tokenized without BOS) or a list of ids. sum is the total log-probability, mean the per-token average. intervene: the forward pass's changes (help(lm.vector)).",
                  example: "=m:score(\"The capital of France is\", \" Paris\").sum"),
        HelpEntry(key: "choose", usage: "m:choose(prefix, options [, {by=\"mean\"}]) -> best, scores, index",
                  text: "Scores each option string as a continuation of the prefix and returns the best one, the scores (one table per option: option, score, sum, mean, logprobs, ids, and calibrated) and the best one's index. by = \"sum\" (total log-probability), \"mean\" (per token; the default) or \"calibrated\" (the sum minus the option's log-probability with no context); ties go to the first. The rule is lm.choice's (check, rank), the same for lm.remote's models.",
                  example: "local best, scores = m:choose(\"The capital of France is\", {\" Paris\", \" Rome\"})\nprint(best)"),
        HelpEntry(key: "state", usage: "m:state([prompt] [, {intervene=}]) -> state",
                  text: "A prompt state you keep working on: tokens and their cache. Its methods: append, generate, fork, rewind, text, ids; #st is its length in tokens. intervene (help(lm.vector)) holds for every token the state and its forks evaluate; positions = \"generated\" then means the tokens its generations drew.",
                  example: "local st = m:state(m:template({{role = \"user\", content = \"Hi\"}}))\nlocal a = st:fork()\nprint(#st, a:generate({max_tokens = 8}).text)"),
        HelpEntry(key: "attention", usage: "m:attention(text_or_ids [, {layers=\"all\", heads=nil}]) -> matrix",
                  text: "Attention probabilities from one forward pass over the text (control tokens parsed, BOS as the model says), a list of ids, or chat messages. layers and heads: \"all\" (the default), a number or a list of numbers, counted from 0 as the model numbers them. The result is a matrix of shape #layers × #heads × T × T: att[i][h][q][k] is how much query position q attends to key position k (positions 1-based, as in att.ids), in layer att.layers[i] and head att.heads[h]; rows sum to 1, zeros above the diagonal (and outside a sliding window). Fields: layers, heads, ids, tokens (the pieces), dims. att:layer(l [, h]) picks model layer l (and head h); att:mean(2) averages over heads (layers × T × T). The engine refuses more than 4 GiB (layers × heads × T² × 4 bytes) with a message saying what to ask for instead; with every layer and head that is about 2,000 tokens for SmolLM2 (30 layers × 9 heads) and 1,780 for Qwen2.5-0.5B (24 × 14); the machine's memory must hold twice that while the result is built.",
                  example: "local att = m:attention(\"The cat sat on the mat\", {layers = {0, 5}})\nprint(att:shape()[3], att.tokens[2])\nlocal avg = att:layer(5):mean(1)          -- T × T, mean over heads\nprint(avg[4]:sum())                           -- row 4 sums to 1"),
        HelpEntry(key: "hidden", usage: "m:hidden(text_or_ids [, {layers=\"all\"}]) -> matrix",
                  text: "The residual stream after each asked layer (0-based), from one forward pass: a matrix #layers × T × embedding; h:layer(l) is T × embedding for model layer l. Fields: layers, ids, tokens, dims.",
                  example: "local h = m:hidden(\"Hello there\", {layers = {0, 29}})\nprint(h:layer(29)[1]:max())"),
        HelpEntry(key: "logit_lens", usage: "m:logit_lens(text_or_ids [, {layers=\"all\", top=5}]) -> lens",
                  text: "The logit lens: each asked layer's residual stream through the final norm and the unembedding, read as a next-token distribution. lens.top[i][t] lists the top most likely next tokens ({id=, piece=, logprob=}) at position t by layer lens.layers[i]; lens.logprob is a matrix #layers × (T − 1) of the log-probability each layer gives the token that actually comes next (column t predicts ids[t + 1]); lens.entropy is #layers × T (nats). At the last layer these are the model's own predictions.",
                  example: "local lens = m:logit_lens(\"The capital of France is\", {layers = {10, 29}, top = 3})\nprint(lens.top[2][5][1].piece)"),
        HelpEntry(key: "steer", usage: "m:steer(positive, negative [, {method=\"mean\", position=\"last\", layers=, normalize=false, intervene=}]) -> vector",
                  text: "A steering vector from two lists of prompts (strings, ids or chat messages): per layer, the mean residual stream of the positive prompts minus the negative's (contrastive activation addition), at each prompt's last token (position = \"mean\": the mean over its tokens). method = \"pca\" pairs the prompts and takes the first principal direction of their differences (representation engineering), oriented and sized as the mean difference's projection on it. layers: default 1 to n − 1 (what a control-vector file holds); normalize = true scales each direction to norm 1, as llama-cvector-generator does. Use it with intervene = {add = v, scale = s, layers = ...}.",
                  example: "local v = m:steer({\"I am so happy!\", \"What a joy!\"}, {\"I am so sad.\", \"What a misery.\"})\nprint(m:generate(\"Tell me about your day.\", {intervene = {add = v, scale = -1, layers = {8, 9, 10}}}).text)"),
        HelpEntry(key: "patching", usage: "m:patching(clean, corrupted, {target=, foil=nil, layers=\"all\", intervene=}) -> sweep",
                  text: "Activation patching: for each layer l and position p, runs the corrupted prompt with its residual stream after layer l at position p replaced by the clean prompt's, and measures log p(target) − log p(foil) at the last position (log p(target) without foil). The prompts must have the same number of tokens; target and foil are one token each (text or id). Returns values (a matrix #layers × T), restored (the same as the share of the clean − corrupted difference restored: 0 nothing, 1 all), clean and corrupted (the two runs' own measures), layers, tokens (the corrupted prompt's pieces) and clean_tokens.",
                  example: "local s = m:patching(\"The capital of France is\", \"The capital of Italy is\", {target = \" Paris\", foil = \" Rome\"})\nprint(s.restored[1])"),
        HelpEntry(key: "lm.vector", usage: "lm.vector.load(path) | lm.vector.new{[layer] = values} | lm.vector.random(like [, {seed=}]) -> vector",
                  text: "A vector: one direction per layer (layers 0-based, as m:hidden counts them), in llama.cpp's control-vector format (v:save writes it, lm.vector.load reads it and files from llama-cvector-generator; refrain generate and score take --control-vector FILE, --control-vector-scaled FILE SCALE and --control-vector-layer-range START END). Arithmetic: v + w, v - w, -v, v * s, s * v, v / s; #v is its number of directions. Methods: layers, get, norm, only, normalized, save, dimension. The intervene option of generate, sample, generate_batch, state, score, choose, attention, hidden, logit_lens and patching changes the forward pass: a vector (added at its layers), or a table, or a list of them: {add = v, scale = 1, layers = ...} adds scale × v to the residual stream after each layer; {ablate = v, layers = ...} removes the component along v; {clamp = v, value = x, layers = ...} sets it to x; {heads = {h, ...} or \"all\", layers = ..., mode = \"zero\" | \"scale\" (scale = f) | \"mean\" (over = {texts})} changes heads' attention outputs; {attention = f, layers = ...} scales a layer's attention output (0 removes it); {patch = m:hidden(...) result, layers = ..., positions = {...}} puts recorded residual rows back. v may also be a list or matrix of numbers (then layers is required). positions = \"all\" (default), \"prompt\", \"generated\" (tokens a generation drew) or a list of 1-based positions. The run store records the interventions with each call (vectors by SHA-256).",
                  example: "local v = lm.vector.load(\"happy.gguf\")\nprint(m:generate(\"Hi\", {intervene = {add = v, scale = 2, layers = {10, 11, 12}}}).text)"),
        HelpEntry(key: "lm.vector.load", usage: "lm.vector.load(path) -> vector", text: "Reads a control-vector file (llama.cpp's GGUF format: tensors direction.L for layers L ≥ 1, f32). Under --sandbox, reading follows --allow-read.", example: "local v = lm.vector.load(\"control_vector.gguf\")"),
        HelpEntry(key: "lm.vector.new", usage: "lm.vector.new{[layer] = values, ...} -> vector", text: "A vector from lists (or 1-D matrices) of numbers, one per layer, all of one size.", example: "local v = lm.vector.new{[10] = m:hidden(\"joy\", {layers = 10})[1][1]}"),
        HelpEntry(key: "lm.vector.random", usage: "lm.vector.random(like [, {seed=0}]) -> vector", text: "Random directions (Gaussian, seeded) with the layers and per-layer norms of like: the control for a steering vector.", example: "local r = lm.vector.random(v, {seed = 1})"),
        HelpEntry(key: "vector:layers", usage: "v:layers() -> {layers}", text: "The layers the vector has a direction for, in increasing order.", example: "=v:layers()"),
        HelpEntry(key: "vector:get", usage: "v:get(layer) -> matrix or nil", text: "The direction at a layer as a 1-D matrix (a copy), nil when the vector has none there.", example: "=v:get(10):max()"),
        HelpEntry(key: "vector:norm", usage: "v:norm([layer]) -> number or {layer = norm}", text: "The Euclidean norm of the direction at a layer, or of each.", example: "=v:norm(10)"),
        HelpEntry(key: "vector:only", usage: "v:only(layers) -> vector", text: "The directions at these layers only (a number or a list).", example: "local mid = v:only({8, 9, 10})"),
        HelpEntry(key: "vector:normalized", usage: "v:normalized() -> vector", text: "Each direction scaled to norm 1 (as llama-cvector-generator writes them).", example: "local u = v:normalized()"),
        HelpEntry(key: "vector:save", usage: "v:save(path)", text: "Writes llama.cpp's control-vector file (GGUF; directions for layers from 1 on): llama.cpp's --control-vector reads it. Under --sandbox, only inside the sandbox folder.", example: "v:save(\"happy.gguf\")"),
        HelpEntry(key: "vector:dimension", usage: "v:dimension() -> n", text: "The size of each direction (the model's embedding width).", example: "=v:dimension()"),
        HelpEntry(key: "lm.matrix", usage: "lm.matrix(nested_table_or_matrix) -> matrix",
                  text: "A matrix of floats from a rectangular nested table of numbers (or a compact copy of a matrix view). Matrices hold their numbers in one buffer; indexing, slicing and selecting make views that share it. x[i] drops the first dimension (a number when one is left); positions are 1-based, negative ones count from the end. Methods: shape, dim, get, slice, select, sum, mean, max, min, totable, layer; #x is the size of the first dimension.",
                  example: "local x = lm.matrix({{1, 2, 3}, {4, 5, 6}})\nprint(x[2][3], x:get(2, 3), x:sum(1), x:slice(2, 2, 3))"),
        HelpEntry(key: "matrix:shape", usage: "x:shape() -> {sizes}", text: "The size of each dimension; x:dim() is how many there are and #x the first.", example: "=att:shape()"),
        HelpEntry(key: "matrix:dim", usage: "x:dim() -> n", text: "The number of dimensions.", example: "=att:dim()"),
        HelpEntry(key: "matrix:get", usage: "x:get(i, j, ...) -> number", text: "One element, one 1-based index per dimension (negative from the end); faster than x[i][j] in loops, which makes a view per step.", example: "=att:get(1, 1, 5, 2)"),
        HelpEntry(key: "matrix:slice", usage: "x:slice(dim, from [, to]) -> matrix", text: "A view with dimension dim narrowed to positions from..to (inclusive, 1-based; to defaults to the end; negative counts from the end). The view shares the numbers.", example: "local rows = avg:slice(1, 10, 20)   -- query positions 10 to 20"),
        HelpEntry(key: "matrix:select", usage: "x:select(dim, i) -> matrix or number", text: "A view with dimension dim fixed at position i and removed (x[i] is x:select(1, i)).", example: "local head3 = att[1]:select(1, 3)"),
        HelpEntry(key: "matrix:sum", usage: "x:sum([dim]) -> matrix or number", text: "The sum over dimension dim (the result lacks it), or over every element without dim. Accumulates in double precision.", example: "=avg:slice(2, 1, 4):sum(2)   -- each row's mass on keys 1..4"),
        HelpEntry(key: "matrix:mean", usage: "x:mean([dim]) -> matrix or number", text: "The mean over dimension dim (the result lacks it), or over every element. For attention, att:mean(2) is the mean over heads.", example: "local avg = att:mean(2)   -- layers × T × T"),
        HelpEntry(key: "matrix:max", usage: "x:max([dim]) -> matrix or number", text: "The largest value over dimension dim, or over every element.", example: "=att:max()"),
        HelpEntry(key: "matrix:min", usage: "x:min([dim]) -> matrix or number", text: "The smallest value over dimension dim, or over every element.", example: "=att:min()"),
        HelpEntry(key: "matrix:totable", usage: "x:totable() -> nested tables", text: "The numbers as nested Lua tables (rows of rows); for big matrices slice first.", example: "=att:layer(0, 0):slice(1, 1, 3):slice(2, 1, 3):totable()"),
        HelpEntry(key: "matrix:layer", usage: "x:layer(l [, h]) -> matrix", text: "For what m:attention and m:hidden return: the part for model layer l (0-based, one of x.layers), and with h, for model head h (one of x.heads). An error names the layers there are.", example: "local a = att:layer(14, 3)   -- T × T"),
        HelpEntry(key: "st:append", usage: "st:append(text_or_ids) -> st",
                  text: "Adds tokens to the state: text (no BOS; control tokens parsed) or a list of ids. They are evaluated when next needed.",
                  example: "st:append(\"<|im_start|>assistant\\n\")"),
        HelpEntry(key: "st:generate", usage: "st:generate([opts]) -> result",
                  text: "Generates after the state's tokens (options and result as for m:generate) and appends the generated tokens to the state.",
                  example: "local r = st:generate({max_tokens = 16, temperature = 0})"),
        HelpEntry(key: "st:fork", usage: "st:fork() -> state",
                  text: "An independent copy of the state: what you append to one does not change the other. Pending tokens are evaluated first, so both share that work, and the two share the cached prefix in memory (copy-on-write pages of 32 positions) instead of copying it.",
                  example: "local b = st:fork()\nb:append(\" No.\")"),
        HelpEntry(key: "st:rewind", usage: "st:rewind(n) -> st",
                  text: "Keeps the first n tokens (a negative n drops the last -n), so you can try another continuation from a mark.",
                  example: "local mark = #st\nst:generate({max_tokens = 8})\nst:rewind(mark)"),
        HelpEntry(key: "st:text", usage: "st:text() -> text",
                  text: "The state's tokens as text, control tokens included.",
                  example: "print(st:text())"),
        HelpEntry(key: "st:ids", usage: "st:ids() -> {ids}",
                  text: "The state's token ids.",
                  example: "=st:ids()"),
    ]

    /// The entry for a name as a user writes it: "generate", "lm.generate", "m:generate", "st:fork", "fork",
    /// "lm.stats.auc", "auc", among the built-in entries and then `documented` (registered from Lua).
    static func entry(named raw: String, documented: [HelpEntry] = []) -> HelpEntry? {
        let all = entries + documented
        if let e = all.first(where: { $0.key == raw }) { return e }
        let last = String(raw.split(whereSeparator: { $0 == "." || $0 == ":" }).last ?? "")
        let stateLike = raw.hasPrefix("st") && raw.contains(where: { $0 == ":" || $0 == "." })
        if stateLike, let e = entries.first(where: { $0.key == "st:" + last }) { return e }
        return all.first(where: { $0.key == last || $0.key == "lm." + last || $0.key == "st:" + last || $0.key == "matrix:" + last })
            ?? documented.first(where: { $0.key.hasSuffix("." + last) })
    }

    /// The text `help` prints: usage, description, example; for a module (an entry other entries sit under, as
    /// `lm.stats` holds `lm.stats.auc`), the list of what it holds.
    static func render(_ e: HelpEntry, documented: [HelpEntry] = []) -> String {
        var usage = e.usage
        if ["tokenize", "detokenize", "token", "template", "generate", "sample", "generate_batch", "score", "choose", "state",
            "attention", "hidden", "logit_lens"].contains(e.key) {
            usage += "\n" + e.usage.replacingOccurrences(of: "m:", with: "lm.") + "   (on lm.model)"
        }
        var text = "\(usage)\n\n\(wrap(e.text))"
        let members = documented.filter { $0.key.hasPrefix(e.key + ".") }.sorted { $0.key < $1.key }
        if !members.isEmpty { text += "\n\n" + list(members) }
        if !e.example.isEmpty {
            text += "\n\nexample:\n" + e.example.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        }
        return text
    }

    /// Usage and summary, one entry a line.
    static func list(_ entries: [HelpEntry]) -> String {
        entries.map { e in
            e.usage.count <= 44 ? "  " + e.usage.padding(toLength: 44, withPad: " ", startingAt: 0) + "  " + e.summary
                : "  " + e.usage + "\n" + String(repeating: " ", count: 48) + e.summary
        }.joined(separator: "\n")
    }

    /// The built-in entries, then the registered ones that are not inside another (so `lm.stats` is listed and
    /// `lm.stats.auc` is left to `help(lm.stats)`).
    static func overview(documented: [HelpEntry] = []) -> String {
        let top = documented.filter { e in !documented.contains { e.key.hasPrefix($0.key + ".") } }
        return "refrain's Lua API (help(x) for one of these; :help for the REPL's commands)\n\n" + list(entries + top)
    }

    /// Wraps each paragraph (line) at 100 columns.
    static func wrap(_ s: String, width: Int = 100) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: false).map { paragraph in
            var lines: [String] = [], line = ""
            for w in paragraph.split(separator: " ") {
                if !line.isEmpty && line.count + 1 + w.count > width { lines.append(line); line = "" }
                line += (line.isEmpty ? "" : " ") + w
            }
            if !line.isEmpty { lines.append(line) }
            return lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }
}

extension LuaHost {
    /// The help text for the value at `i`: a name, or a function `lm` or a model or state has.
    func helpText(_ a: Arguments, _ i: Int32) -> String? {
        if a.lua.isNoneOrNil(i) { return Help.overview(documented: documented) }
        let render = { [documented] (e: HelpEntry) in Help.render(e, documented: documented) }
        if let s = a.lua.string(i) { return Help.entry(named: s, documented: documented).map(render) }
        lua_rawgeti(L, luaRegistry, lua_Integer(helpNamesRef))
        a.lua.pushValue(i)
        lua_rawget(L, -2)
        defer { a.lua.pop(2) }
        return a.lua.string(-1).flatMap { Help.entry(named: $0, documented: documented) }.map(render)
    }

    /// `lm.document(value, {name=, usage=, text=, example=})`: registers help for a value written in Lua (a
    /// function or a module table), found by `help(value)` and by its name; a later entry of the same name
    /// replaces the earlier. Returns the value.
    func document(_ lua: Lua) throws -> Int32 {
        let a = Arguments(lua: lua, function: "document")
        try a.table(2)
        func field(_ key: String, required: Bool) throws -> String? {
            lua.rawGet(2, key)
            defer { lua.pop() }
            if lua.isNoneOrNil(-1) && !required { return nil }
            guard let s = lua.string(-1) else {
                throw LuaError.argument(2, "field '\(key)' must be a string, got \(lua.typeName(-1))")
            }
            return s
        }
        lua.pushNil()
        while lua_next(L, 2) != 0 {
            lua.pop()
            let k = lua.string(-1) ?? lua.describe(-1)
            guard ["name", "usage", "text", "example"].contains(k) else {
                lua.pop()
                throw LuaError.argument(2, "unknown field '\(k)' (name, usage, text, example)")
            }
        }
        let name = try field("name", required: true)!
        let entry = HelpEntry(key: name, usage: try field("usage", required: false) ?? name,
                              text: try field("text", required: true)!, example: try field("example", required: false) ?? "")
        documented.removeAll { $0.key == name }
        documented.append(entry)
        if !lua.isNoneOrNil(1) {
            lua_rawgeti(L, luaRegistry, lua_Integer(helpNamesRef))
            lua.pushValue(1)
            lua.push(name)
            lua_rawset(L, -3)
            lua.pop()
        }
        lua_settop(L, 1)
        return 1
    }

    /// `help` and `lm.doc`, and the function -> name table they look functions up in (`lm` and the model
    /// methods table at the given indices).
    func installHelp(lm: Int32, methods: Int32) {
        pushFunction("help") { [unowned self] lua in
            let text = self.helpText(Arguments(lua: lua, function: "help"), 1)
                ?? "no help for \(lua.describe(1)) (help() lists what there is)"
            writeStdout(text + "\n")
            return 0
        }
        lua_setglobal(L, "help")
        pushFunction("doc") { [unowned self] lua in
            guard let text = self.helpText(Arguments(lua: lua, function: "doc"), 1) else { return 0 }
            lua.push(text)
            return 1
        }
        lua_setfield(L, lm, "doc")
        pushFunction("document") { [unowned self] lua in try self.document(lua) }
        lua_setfield(L, lm, "document")

        lua.newTable()
        let names = lua.absolute(-1)
        func name(_ table: Int32, _ key: String, _ entry: String) {
            lua.rawGet(table, key)
            lua.push(entry)
            lua_rawset(L, names)
        }
        name(lm, "executable", "lm.executable")
        for (op, _) in modelOperations { name(lm, op, op); name(methods, op, op) }
        for f in ["load", "doc", "document", "pretty", "clock", "isatty", "grammar", "accepts", "matrix", "store", "http", "fs", "options", "defaults", "vector"] { name(lm, f, "lm." + f) }
        lua.rawGet(lm, "vector")
        for f in ["load", "new", "random"] { name(lua.absolute(-1), f, "lm.vector." + f) }
        lua.pop()
        refrain_luaL_getmetatable(L, "lm.vector")
        lua.rawGet(-1, "__index")
        let vectorMethods = lua.absolute(-1)
        for (op, _) in vectorOperations { name(vectorMethods, op, "vector:" + op) }
        name(vectorMethods, "dimension", "vector:dimension")
        lua.pop(2)
        lua.rawGet(lm, "fs")
        name(lua.absolute(-1), "mkdir", "lm.fs.mkdir")
        name(lua.absolute(-1), "cwd", "lm.fs.cwd")
        name(lua.absolute(-1), "lock", "lm.fs.lock")
        lua.pop()
        lua.rawGet(lm, "store")
        let store = lua.absolute(-1)
        for (f, _) in storeFunctions { name(store, f, "lm.store." + f) }
        lua.pop()
        refrain_luaL_getmetatable(L, "lm.matrix")
        lua.rawGet(-1, "__index")
        lua_getupvalue(L, -1, 3)                    // the methods table the __index closure holds
        let matrixMethodTable = lua.absolute(-1)
        for (op, _) in matrixMethods { name(matrixMethodTable, op, "matrix:" + op) }
        lua.pop(3)
        refrain_luaL_getmetatable(L, "lm.state")
        lua.rawGet(-1, "__index")
        let stateMethods = lua.absolute(-1)
        for (op, _) in stateOperations { name(stateMethods, op, "st:" + op) }
        lua.pop(2)
        helpNamesRef = luaL_ref(L, luaRegistry)
    }
}
