// Checks tokenizer files with the real libraries: Hugging Face's Rust
// `tokenizers` core (its napi build, @anush008/tokenizers) and transformers.js
// (@huggingface/transformers, AutoTokenizer). Driven by tests/cli_tokenizer_libs.sh.
//
//   node tok_libs.mjs vectors DIR INP OUT     every text of a llama.cpp vector
//       file (INP, split on "\n__ggml_vocab_test__\n") encodes, without special
//       tokens, to the ids of OUT in both libraries, with DIR's files
//   node tok_libs.mjs compare ORIG OURS TEXTS ORIG and OURS (folders) give the
//       same ids for every text of TEXTS (a JSON array of strings), with and
//       without special tokens, and decode every id list to the same text, in
//       both libraries; the same added tokens, special tokens, chat template
//   node tok_libs.mjs load DIR...             the Rust core loads each DIR's
//       tokenizer.json and encodes a text with it
//   node tok_libs.mjs jsload DIR...           transformers.js loads each DIR
//       and encodes and decodes a text with it
//   node tok_libs.mjs agree TEXTS DIR...      for each DIR, the Rust core and
//       transformers.js give the same ids for every text of TEXTS, with and
//       without special tokens
//
// Prints "ok: ..." / "FAIL: ..." lines and "tok_libs: N passed, M failed";
// exits 1 on a failure.
import fs from 'node:fs';
import path from 'node:path';
import rust from '@anush008/tokenizers';
import { AutoTokenizer, env } from '@huggingface/transformers';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.useBrowserCache = false;
env.useFSCache = false;

let passed = 0, failed = 0;
function check(cond, what) {
    if (cond) passed++;
    else {
        failed++;
        console.log('FAIL: ' + what);
    }
    return cond;
}
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const show = (s) => JSON.stringify(s.length > 60 ? s.slice(0, 60) + '...' : s);

async function jsTokenizer(dir) {
    env.localModelPath = path.dirname(path.resolve(dir)) + '/';
    return AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)));
}

async function rustIds(tok, text, special) {
    const e = await tok.encode(text, null, { addSpecialTokens: special });
    return Array.from(e.getIds());
}

function jsIds(tok, text, special) {
    return Array.from(tok.encode(text, { add_special_tokens: special }));
}

async function vectors(dir, inp, out) {
    const texts = fs.readFileSync(inp, 'utf8').split('\n__ggml_vocab_test__\n');
    texts.pop(); // nothing after the last separator
    const want = fs.readFileSync(out, 'utf8').split('\n').map((l) => l.split(' ').filter((x) => x).map(Number));
    const r = rust.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
    const j = await jsTokenizer(dir);
    let rok = 0, jok = 0;
    for (let i = 0; i < texts.length; i++) {
        const a = await rustIds(r, texts[i], false), b = jsIds(j, texts[i], false);
        if (check(same(a, want[i]), `${inp} #${i} ${show(texts[i])}: rust ${a} want ${want[i]}`)) rok++;
        if (check(same(b, want[i]), `${inp} #${i} ${show(texts[i])}: transformers.js ${b} want ${want[i]}`)) jok++;
    }
    console.log(`ok: ${path.basename(inp)}: rust ${rok}/${texts.length}, transformers.js ${jok}/${texts.length} exact`);
}

function addedOf(file) {
    const tj = JSON.parse(fs.readFileSync(file, 'utf8'));
    return new Map(tj.added_tokens.map((a) => [a.id, `${a.content}|||${a.special}`]));
}

async function compare(orig, ours, textsFile) {
    const texts = JSON.parse(fs.readFileSync(textsFile, 'utf8'));
    const ro = rust.Tokenizer.fromFile(path.join(orig, 'tokenizer.json'));
    const rm = rust.Tokenizer.fromFile(path.join(ours, 'tokenizer.json'));
    const jo = await jsTokenizer(orig), jm = await jsTokenizer(ours);
    const count = { rust: 0, js: 0, rdec: 0, jdec: 0 };
    // Added tokens: every one of the original's, with its id. The special
    // flag: llama.cpp's converter writes CONTROL for special tokens and for
    // non-special ones that look special (does_token_look_special: <|...|>,
    // <...>, [...] forms), so those come back special; nothing else may differ.
    const ao = addedOf(path.join(orig, 'tokenizer.json')), am = addedOf(path.join(ours, 'tokenizer.json'));
    const looks = (t) => /^<\|.*\|>$/.test(t) || /^<[^<>]*>$/.test(t) || /^\[[^\[\]]*\]$/.test(t);
    const lost = new Set();
    let bad = [];
    for (const [id, v] of ao) {
        const w = am.get(id);
        const [content, special] = v.split('|||');
        if (w === v) continue;
        if (w === `${content}|||true` && special === 'false' && looks(content)) lost.add(id);
        else bad.push([id, v, w]);
    }
    check(bad.length === 0, `added tokens: ${bad.length} of ${ao.size} differ, first ${JSON.stringify(bad.slice(0, 3))}`);
    check(am.size === ao.size, `added tokens: ${am.size} in mconv's file, ${ao.size} in the original`);
    if (lost.size) console.log(`note: ${lost.size} added tokens are special:false in the original but look special, so the GGUF marks them CONTROL: ${[...lost].join(' ')}`);
    for (const special of [false, true]) {
        for (const text of texts) {
            const a = await rustIds(ro, text, special), b = await rustIds(rm, text, special);
            if (check(same(a, b), `rust special=${special} ${show(text)}: original ${a} mconv ${b}`)) count.rust++;
            const c = jsIds(jo, text, special), d = jsIds(jm, text, special);
            if (check(same(c, d), `transformers.js special=${special} ${show(text)}: original ${c} mconv ${d}`)) count.js++;
            for (const skip of [false, true]) {
                // with skip, leave out the ids whose special flag a GGUF cannot carry (below)
                const ids = skip ? a.filter((x) => !lost.has(x)) : a;
                if (ids.length === 0) { count.rdec++; count.jdec++; continue; }
                const da = await ro.decode(ids, skip), db = await rm.decode(ids, skip);
                if (check(da === db, `rust decode skip=${skip} ${show(text)}: ${show(da)} vs ${show(db)}`)) count.rdec++;
                const cs = skip ? c.filter((x) => !lost.has(x)) : c;
                if (cs.length === 0) { count.jdec++; continue; }
                const dc = jo.decode(cs, { skip_special_tokens: skip }), dd = jm.decode(cs, { skip_special_tokens: skip });
                if (check(dc === dd, `transformers.js decode skip=${skip} ${show(text)}: ${show(dc)} vs ${show(dd)}`)) count.jdec++;
            }
        }
    }
    const n = texts.length * 2;
    console.log(`ok: ${path.basename(ours)}: ${texts.length} texts with and without special tokens: ids rust ${count.rust}/${n}, ` +
                `transformers.js ${count.js}/${n}; decode rust ${count.rdec}/${2 * n}, transformers.js ${count.jdec}/${2 * n}`);
    const co = JSON.parse(fs.readFileSync(path.join(orig, 'tokenizer_config.json'), 'utf8'));
    const cm = JSON.parse(fs.readFileSync(path.join(ours, 'tokenizer_config.json'), 'utf8'));
    for (const k of ['eos_token', 'pad_token', 'unk_token', 'bos_token']) {
        const want = typeof co[k] === 'object' && co[k] ? co[k].content : co[k];
        if (k === 'bos_token' && want == null) continue; // a GGUF always names a bos id (from config.json)
        check((cm[k] ?? null) === (want ?? null), `${k}: original ${want} mconv ${cm[k]}`);
    }
    check((cm.add_bos_token ?? false) === (co.add_bos_token ?? false) || co.add_bos_token === undefined,
          `add_bos_token: original ${co.add_bos_token} mconv ${cm.add_bos_token}`);
    check(cm.chat_template === co.chat_template, 'chat template equals the original\'s');
    const tmpl = fs.existsSync(path.join(ours, 'chat_template.jinja')) ? fs.readFileSync(path.join(ours, 'chat_template.jinja'), 'utf8') : null;
    check(tmpl === co.chat_template, 'chat_template.jinja equals the original\'s template');
    // the chat template renders the same prompt ids in transformers.js
    if (co.chat_template) {
        const msgs = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello, 世界! 12345' },
                      { role: 'assistant', content: 'Hi.' }, { role: 'user', content: '<|im_end|> what?' }];
        const po = jo.apply_chat_template(msgs, { tokenize: true, add_generation_prompt: true, return_tensor: false });
        const pm = jm.apply_chat_template(msgs, { tokenize: true, add_generation_prompt: true, return_tensor: false });
        check(same(Array.from(po), Array.from(pm)), `chat prompt ids: original ${po.length} ids, mconv ${pm.length}`);
    }
}

async function load(dirs) {
    let n = 0;
    for (const dir of dirs) {
        let ok = false, why = '';
        try {
            const t = rust.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
            // a synthetic vocabulary may have no token for these characters: loading
            // and encoding without an error is what is checked
            const ids = await rustIds(t, 'Hello world, the 123 things!', true);
            ok = Array.isArray(ids);
            why = `${ids.length} ids`;
        } catch (e) {
            why = String(e && e.message ? e.message : e);
        }
        if (check(ok, `${dir}: the Rust core cannot load tokenizer.json: ${why}`)) n++;
    }
    console.log(`ok: the Rust core loaded ${n} of ${dirs.length} tokenizer.json files`);
}

async function jsload(dirs) {
    let n = 0;
    for (const dir of dirs) {
        let ok = false, why = '';
        try {
            const t = await jsTokenizer(dir);
            const text = 'Hello world, the 123 things! \u00e9\u4e16\u754c \ud83d\ude80\n\n  x';
            const ids = jsIds(t, text, true);
            ok = ids.length > 0 && typeof t.decode(ids) === 'string';
            why = `${ids.length} ids`;
        } catch (e) {
            why = String(e && e.message ? e.message : e);
        }
        if (check(ok, `${dir}: transformers.js cannot load or use it: ${why}`)) n++;
    }
    console.log(`ok: transformers.js loaded and used ${n} of ${dirs.length} tokenizers`);
}

async function agree(textsFile, dirs) {
    const texts = JSON.parse(fs.readFileSync(textsFile, 'utf8'));
    let good = 0;
    for (const dir of dirs) {
        const r = rust.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
        const j = await jsTokenizer(dir);
        let n = 0;
        for (const special of [false, true])
            for (const text of texts) {
                const a = await rustIds(r, text, special), b = jsIds(j, text, special);
                if (check(same(a, b), `${path.basename(dir)} special=${special} ${show(text)}: rust ${a} transformers.js ${b}`)) n++;
            }
        if (n === 2 * texts.length) good++;
        else console.log(`differ: ${path.basename(dir)}: ${2 * texts.length - n} of ${2 * texts.length} encodings`);
    }
    console.log(`ok: the Rust core and transformers.js agree on all ${texts.length} texts for ${good} of ${dirs.length} tokenizers`);
}

const [mode, ...args] = process.argv.slice(2);
try {
    if (mode === 'vectors') await vectors(...args);
    else if (mode === 'compare') await compare(...args);
    else if (mode === 'load') await load(args);
    else if (mode === 'jsload') await jsload(args);
    else if (mode === 'agree') await agree(args[0], args.slice(1));
    else throw new Error('usage: tok_libs.mjs vectors|compare|load|jsload ...');
} catch (e) {
    check(false, `${mode} ${args.join(' ')}: ${e && e.stack ? e.stack : e}`);
}
console.log(`tok_libs: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
