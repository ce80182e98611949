/* mc_tok_pre: the table from llama.cpp's tokenizer.ggml.pre names to the
 * Hugging Face pre-tokenizers they stand for.
 *
 * Sources (facts, read as data): llama.cpp src/llama-vocab.cpp (the names,
 * which pre type each selects, its clean_spaces / ignore_merges / add_bos
 * defaults, and the "original regex from tokenizer.json" kept beside each
 * rewrite), convert_hf_to_gguf_update.py (the model each name was registered
 * from), and the models' own tokenizer.json files where they could be read
 * (docs/FORMAT.md lists which). Regexes are Oniguruma patterns as the
 * tokenizer.json files spell them, not llama.cpp's rewrites. */
#include "mc_tok_pre.h"

#include "mc_gguf.h"

#include <cjson/cJSON.h>
#include <string.h>

/* cl100k (Llama 3, DBRX, GLM-4): digits in runs of up to 3 */
#define R_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen 2 / 2.5 / 3: one digit per piece */
#define R_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen 3.5: combining marks join letters */
#define R_QWEN35 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* o200k (GPT-4o, Llama 4, MiniMax-M2) */
#define R_O200K "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Tekken (Mistral Nemo) */
#define R_TEKKEN "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Jais 2: cl100k with cascading whitespace runs */
#define R_JAIS2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}"
/* Tiny Aya: digits grouped in threes from the right */
#define R_AYA_DIGITS "\\d{1,3}(?=(?:\\d{3})*\\b)"
/* Ling / LLaDA-MoE (possessive quantifiers, as the file has them) */
#define R_BAILING "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
/* Seed-Coder (literal CR LF in its classes) */
#define R_SEED "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\r\n]+|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
/* K-EXAONE */
#define R_EXAONE_MOE "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
/* MiniCPM5's second split: cl100k with whole digit runs */
#define R_MINICPM5 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_N13 "\\p{N}{1,3}"
/* DeepSeek V3: CJK and kana runs, then the main split (literal CR LF) */
#define R_CJK_KANA "[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+"
#define R_DSV3 "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
#define R_SPARK "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+"
/* DeepSeek LLM / Coder (first generation) */
#define R_CRLF "[\r\n]"
#define R_DS_LETTERS "\\s?[A-Za-z\xC2\xB5\xC3\x80-\xC3\x96\xC3\x98-\xC3\xB6\xC3\xB8-\xC6\xBA\xC6\xBC-\xC6\xBF\xC7\x84-\xCA\x93\xCA\x95-\xCA\xAF\xCD\xB0-\xCD\xB3\xCD\xB6\xCD\xB7\xCD\xBB-\xCD\xBD\xCD\xBF\xCE\x86\xCE\x88-\xCE\x8A\xCE\x8C\xCE\x8E-\xCE\xA1\xCE\xA3-\xCF\xB5\xCF\xB7-\xD2\x81\xD2\x8A-\xD4\xAF\xD4\xB1-\xD5\x96\xE1\x82\xA0-\xE1\x83\x85\xE1\x8E\xA0-\xE1\x8F\xB5\xE1\x8F\xB8-\xE1\x8F\xBD\xE1\xB2\x90-\xE1\xB2\xBA\xE1\xB2\xBD-\xE1\xB2\xBF\xE1\xB4\x80-\xE1\xB4\xAB\xE1\xB5\xAB-\xE1\xB5\xB7\xE1\xB5\xB9-\xE1\xB6\x9A\xE1\xB8\x80-\xE1\xBC\x95\xE1\xBC\x98-\xE1\xBC\x9D\xE1\xBC\xA0-\xE1\xBD\x85\xE1\xBD\x88-\xE1\xBD\x8D\xE1\xBD\x90-\xE1\xBD\x97\xE1\xBD\x99\xE1\xBD\x9B\xE1\xBD\x9D\xE1\xBD\x9F-\xE1\xBD\xBD\xE1\xBE\x80-\xE1\xBE\xB4\xE1\xBE\xB6-\xE1\xBE\xBC\xE1\xBE\xBE\xE1\xBF\x82-\xE1\xBF\x84\xE1\xBF\x86-\xE1\xBF\x8C\xE1\xBF\x90-\xE1\xBF\x93\xE1\xBF\x96-\xE1\xBF\x9B\xE1\xBF\xA0-\xE1\xBF\xAC\xE1\xBF\xB2-\xE1\xBF\xB4\xE1\xBF\xB6-\xE1\xBF\xBC\xE2\x84\x82\xE2\x84\x87\xE2\x84\x8A-\xE2\x84\x93\xE2\x84\x95\xE2\x84\x99-\xE2\x84\x9D\xE2\x84\xA4\xE2\x84\xA6\xE2\x84\xA8\xE2\x84\xAA-\xE2\x84\xAD\xE2\x84\xAF-\xE2\x84\xB4\xE2\x84\xB9\xE2\x84\xBC-\xE2\x84\xBF\xE2\x85\x85-\xE2\x85\x89\xE2\x85\x8E\xE2\x86\x83\xE2\x86\x84\xE2\xB0\x80-\xE2\xB1\xBB\xE2\xB1\xBE-\xE2\xB3\xA4\xE2\xB3\xAB-\xE2\xB3\xAE\xE2\xB3\xB2\xE2\xB3\xB3\xEA\x99\x80-\xEA\x99\xAD\xEA\x9A\x80-\xEA\x9A\x9B\xEA\x9C\xA2-\xEA\x9D\xAF\xEA\x9D\xB1-\xEA\x9E\x87\xEA\x9E\x8B-\xEA\x9E\x8E\xEA\xAD\xB0-\xEA\xAE\xBF\xEF\xAC\x80-\xEF\xAC\x86\xEF\xAC\x93-\xEF\xAC\x97\xEF\xBC\xA1-\xEF\xBC\xBA\xEF\xBD\x81-\xEF\xBD\x9A\xF0\x90\x90\x80-\xF0\x90\x91\x8F\xF0\x90\x92\xB0-\xF0\x90\x93\x93\xF0\x90\x93\x98-\xF0\x90\x93\xBB\xF0\x90\xB2\x80-\xF0\x90\xB2\xB2\xF0\x90\xB3\x80-\xF0\x90\xB3\xB2\xF0\x91\xA2\xA0-\xF0\x91\xA3\x9F\xF0\x9E\xA4\x80-\xF0\x9E\xA5\x83]+"
#define R_DS_PUNCT "\\s?[!-/:-~\xEF\xBC\x81-\xEF\xBC\x8F\xEF\xBC\x9A-\xEF\xBD\x9E\xE2\x80\x98-\xE2\x80\x9F\xE3\x80\x80-\xE3\x80\x82]+"
#define R_DS_CJK "[\xE4\xB8\x80-\xE9\xBE\xA5\xE0\xA0\x80-\xE4\xB8\x80\xEA\xB0\x80-\xED\x9F\xBF]+"
/* BLOOM (the nested class is Oniguruma's union) */
#define R_BLOOM " ?[^(\\s|[.,!?\xE2\x80\xA6\xE3\x80\x82\xEF\xBC\x8C\xE3\x80\x81\xE0\xA5\xA4\xDB\x94\xD8\x8C])]+"
/* Laguna: newline runs join what follows */
#define R_NL_RUNS "(?:\\r?\\n)+(?!\\r?\\n)"
/* Approximations (MC_TP_APPROX): llama.cpp's own rules */
#define R_YOUTU1 "[\xEA\xB0\x80-\xED\x9E\xA3\xE3\x84\xB1-\xE3\x86\x8E]+|[\xEF\xBC\x81\xE2\x80\xA6\xE2\x80\x9C\xE2\x80\x9D\xE2\x80\x98\xE2\x80\x99\xE2\x80\x94\xEF\xBC\x9A\xEF\xBC\x9B\xEF\xBC\x8C\xE3\x80\x81-\xE3\x80\xBF\xEF\xB8\xB0-\xEF\xB9\x8F]+|[\xE3\x84\x85-\xE3\x84\xAF]+|[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+"
#define R_YOUTU2 "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_KIMI "[\\p{Han}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define R_AFMOE_CJK "[\xE4\xB8\x80-\xE9\xBF\xBF\xE3\x90\x80-\xE4\xB6\xBF\xEF\xA4\x80-\xEF\xAB\xBF\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF\xEF\xBD\xA5-\xEF\xBE\x9F\xE2\xBC\x80-\xE2\xBF\x9F\xE0\xB9\x80-\xE0\xB9\xBF\xE0\xBA\x80-\xE0\xBB\xBF\xE1\x9E\x80-\xE1\x9F\xBF\xE1\x80\x80-\xE1\x82\x9F\xEA\xA9\xA0-\xEA\xA9\xBF\xEA\xA7\xA0-\xEA\xA7\xBF\xEA\xB0\x80-\xED\x9E\xAF\xE1\x84\x80-\xE1\x87\xBF]+"
#define R_UFAKZEKA "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define SPLIT(r) { MC_TS_SPLIT, r }
#define BL { MC_TS_BYTELEVEL, NULL }
#define BLRE { MC_TS_BYTELEVEL_RE, NULL }

static const mc_tok_pre g_pre[] = {
    /* GPT-2's byte-level regex, nothing else */
    { "gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|modern-bert|jina-v1-en|jina-v2-code|"
      "roberta-bpe|exaone4|jais", MC_TP_CLEAN, "openai-community/gpt2", { BLRE } },
    { "trillion|granite-docling", 0, "GPT-2's byte-level regex (llama.cpp type GPT2)", { BLRE } },
    { "mpt|olmo", MC_TP_NFC | MC_TP_CLEAN, "EleutherAI/gpt-neox-20b (NFC, GPT-2 regex)", { BLRE } },
    { "falcon", MC_TP_CLEAN, "tiiuae/falcon-7b (checked: tok-vectors falcon)", { { MC_TS_PUNCT, NULL }, BLRE, { MC_TS_DIGITS, NULL }, SPLIT("[0-9][0-9][0-9]") } },
    { "starcoder|refact|codeshell|exaone|minerva-7b|mellum2", MC_TP_CLEAN, "bigcode/starcoder2-3b, smallcloudai/Refact-1_6-base",
      { { MC_TS_DIGITS1, NULL }, BLRE } },
    { "smollm", 0, "HuggingFaceTB/SmolLM-135M", { { MC_TS_DIGITS1, NULL }, BLRE } },
    { "command-r", MC_TP_NFC, "CohereForAI/c4ai-command-r-v01", { { MC_TS_DIGITS1, NULL }, BLRE } },
    { "deepseek-llm", 0, "deepseek-ai/deepseek-llm-7b-base",
      { SPLIT(R_CRLF), SPLIT(R_DS_LETTERS), SPLIT(R_DS_PUNCT), SPLIT("\\s+$"), SPLIT(R_DS_CJK), { MC_TS_DIGITS1, NULL }, BL } },
    { "deepseek-coder", 0, "deepseek-ai/deepseek-coder-6.7b-base",
      { SPLIT(R_CRLF), SPLIT("\\s?\\p{L}+"), SPLIT("\\s?\\p{P}+"), SPLIT(R_DS_CJK), { MC_TS_DIGITS1, NULL }, BL } },
    { "llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano",
      MC_TP_IGNORE_MERGES | MC_TP_ADD_BOS | MC_TP_CLEAN, "meta-llama/Meta-Llama-3-8B", { SPLIT(R_LLAMA3), BL } },
    { "smaug-bpe", MC_TP_IGNORE_MERGES | MC_TP_CLEAN, "abacusai/Smaug-Llama-3-70B-Instruct (checked: corpus-new llama3)",
      { SPLIT(R_LLAMA3), BL } },
    { "dbrx|glm4|chatglm-bpe", MC_TP_CLEAN, "databricks/dbrx-base, THUDM/glm-4-9b (cl100k regex)", { SPLIT(R_LLAMA3), BL } },
    { "qwen2|deepseek-r1-qwen|kormo|f2llmv2", MC_TP_NFC, "Qwen/Qwen1.5-7B (checked: corpus-new qwen3)", { SPLIT(R_QWEN2), BL } },
    { "stablelm2|megrez", MC_TP_CLEAN, "stabilityai/stablelm-2-zephyr-1_6b (Qwen 2 regex)", { SPLIT(R_QWEN2), BL } },
    { "hunyuan|solar-open|grok-2", 0, "tencent/Hunyuan-A13B-Instruct, upstage/Solar-Open-100B (Qwen 2 regex)", { SPLIT(R_QWEN2), BL } },
    { "qwen35", MC_TP_NFC, "Qwen/Qwen3.5-9B-Instruct", { SPLIT(R_QWEN35), BL } },
    { "gpt-4o|llama4|kanana2|talkie|minimax-m2", 0, "Xenova/gpt-4o (o200k regex)", { SPLIT(R_O200K), BL } },
    { "tekken", MC_TP_IGNORE_MERGES | MC_TP_ADD_BOS, "mistralai/Mistral-Nemo-Base-2407", { SPLIT(R_TEKKEN), BL } },
    { "tiny_aya|cohere2moe", 0, "CohereLabs/tiny-aya-base", { SPLIT(R_AYA_DIGITS), SPLIT(R_O200K), BL } },
    { "deepseek-v3|hunyuan-dense|joyai-llm|hy_v4", 0, "deepseek-ai/DeepSeek-V3",
      { SPLIT(R_N13), SPLIT(R_CJK_KANA), SPLIT(R_DSV3), BL } },
    { "spark2_5", 0, "Spark X2.5", { SPLIT(R_N13), SPLIT(R_CJK_KANA), SPLIT(R_SPARK), { MC_TS_DIGITS1, NULL }, BL } },
    { "bloom|gpt3-finnish", MC_TP_CLEAN, "bigscience/bloom", { SPLIT(R_BLOOM), BL } },
    { "poro-chat", 0, "LumiOpen/Poro-34B-chat (BLOOM regex)", { SPLIT(R_BLOOM), BL } },
    { "jais-2", MC_TP_CLEAN, "inceptionai/Jais-2-8B-Chat", { SPLIT(R_JAIS2), BL } },
    { "bailingmoe|bailingmoe2|llada-moe", 0, "inclusionAI/Ling-lite", { SPLIT(R_BAILING), BL } },
    { "seed-coder", 0, "ByteDance-Seed/Seed-Coder-8B-Base", { SPLIT(R_SEED), BL } },
    { "exaone-moe", MC_TP_CLEAN, "LGAI-EXAONE/K-EXAONE-236B-A23B", { SPLIT(R_EXAONE_MOE), BL } },
    { "minicpm5", MC_TP_IGNORE_MERGES | MC_TP_CLEAN, "openbmb/MiniCPM5-1B", { SPLIT(R_N13), SPLIT(R_MINICPM5), BL } },
    { "laguna", 0, "Laguna", { { MC_TS_SPLIT_NEXT, R_NL_RUNS }, SPLIT(R_QWEN2), BL } },
    /* approximations: no original tokenizer.json read; llama.cpp's rules */
    { "viking", MC_TP_APPROX, "LumiOpen/Viking-7B (llama.cpp's rules)", { SPLIT(R_BLOOM), { MC_TS_DIGITS1, NULL }, BL } },
    { "chameleon", MC_TP_APPROX | MC_TP_ADD_BOS, "facebook/chameleon-7b (llama.cpp's rules)",
      { SPLIT("<sentinel:[0-9]+>"), SPLIT("(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"), SPLIT("([\\t\\n]|    |  )"),
        { MC_TS_DIGITS1, NULL }, { MC_TS_PUNCT1, NULL }, BLRE } },
    { "youtu", MC_TP_APPROX | MC_TP_IGNORE_MERGES, "tencent/Youtu-LLM-2B (llama.cpp's rules)", { SPLIT(R_YOUTU1), SPLIT(R_YOUTU2), BL } },
    { "kimi-k2", MC_TP_APPROX, "moonshotai/Kimi-K2-Base (its tiktoken pattern; no tokenizer.json exists)", { SPLIT(R_KIMI), BL } },
    { "superbpe", MC_TP_APPROX, "UW/OLMo2-8B-SuperBPE-t180k (llama.cpp's rules)", { SPLIT("\\p{N}+"), BLRE } },
    { "afmoe", MC_TP_APPROX, "arcee-ai/Trinity-Tokenizer (llama.cpp's rules; its digit grouping as runs of 3)",
      { SPLIT(R_N13), SPLIT(R_AFMOE_CJK), SPLIT(R_DSV3), BL } },
    { "ufakzeka", MC_TP_APPROX, "llama.cpp's rules (Qwen 2 without contractions)", { SPLIT(R_UFAKZEKA), BL } },
    { "granite-embed-multi-97m", MC_TP_APPROX | MC_TP_IGNORE_MERGES, "llama.cpp's rules (o200k)", { SPLIT(R_O200K), BL } },
    { "default", MC_TP_APPROX | MC_TP_CLEAN, "no model: llama.cpp's name for an unrecognised pre-tokenizer; GPT-2's split", { BLRE } },
    /* BPE over raw UTF-8 with U+2581 spaces: not a byte-level tokenizer.json */
    { "gemma4|granite-embed-multi-311m|sarvam-moe|whitespace", MC_TP_REFUSE, "BPE without byte-level encoding", { BLRE } },
};

/* Vocabularies recognised by their tokens, for GGUFs written before
 * tokenizer.ggml.pre existed (GGUF v1/v2): two ids and their strings, and
 * the token count when it is fixed (0: any). */
static const struct {
    uint64_t n;
    uint64_t id_a;
    const char *text_a;
    uint64_t id_b;
    const char *text_b;
    const char *pre;
    const char *what;
} g_known_vocab[] = {
    { 65024, 0, ">>TITLE<<", 11, "<|endoftext|>", "falcon", "Falcon (tiiuae/falcon-7b)" },
    { 50257, 0, "!", 50256, "<|endoftext|>", "gpt-2", "GPT-2" },
    { 0, 0, "<|endoftext|>", 1, "<|padding|>", "mpt", "GPT-NeoX (EleutherAI/gpt-neox-20b)" },
};

const char *mc_tok_pre_guess(const mc_gguf_str *tokens, uint64_t n, const char **what)
{
    for (size_t i = 0; i < sizeof g_known_vocab / sizeof g_known_vocab[0]; i++) {
        if ((g_known_vocab[i].n && g_known_vocab[i].n != n) || g_known_vocab[i].id_a >= n || g_known_vocab[i].id_b >= n)
            continue;
        const mc_gguf_str *a = &tokens[g_known_vocab[i].id_a], *b = &tokens[g_known_vocab[i].id_b];
        if (a->len == strlen(g_known_vocab[i].text_a) && !memcmp(a->s, g_known_vocab[i].text_a, a->len) &&
            b->len == strlen(g_known_vocab[i].text_b) && !memcmp(b->s, g_known_vocab[i].text_b, b->len)) {
            *what = g_known_vocab[i].what;
            return g_known_vocab[i].pre;
        }
    }
    return NULL;
}

const mc_tok_pre *mc_tok_pre_table(unsigned *n)
{
    *n = (unsigned)(sizeof g_pre / sizeof g_pre[0]);
    return g_pre;
}

static int mc_tok_pre_has(const char *names, const char *pre)
{
    size_t n = strlen(pre);
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !memcmp(p, pre, n)) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

const mc_tok_pre *mc_tok_pre_find(const char *pre)
{
    for (size_t i = 0; pre && i < sizeof g_pre / sizeof g_pre[0]; i++)
        if (mc_tok_pre_has(g_pre[i].names, pre)) return &g_pre[i];
    return NULL;
}

static cJSON *mc_tok_pre_step(const mc_tok_step *s)
{
    /* Digits and Punctuation(Isolated) are written as the Split they are in
     * the Rust core, so that every library draws the same pieces:
     * transformers.js reads Digits as ASCII \d only (a "½" or "٣" would stay
     * with its neighbours) and Punctuation as runs whatever the behavior.
     * Rust: Digits splits on char::is_numeric (\p{N}: each one, or runs);
     * Punctuation on is_ascii_punctuation or is_punctuation (\p{P}). */
    static const char *const types[] = { NULL, "Split", "Split", "Split", "Split", "Punctuation", "Split",
                                         "ByteLevel", "ByteLevel" };
    cJSON *o = cJSON_CreateObject();
    int bad = !o || !cJSON_AddStringToObject(o, "type", types[s->kind]);
    if (bad) goto fail;
    switch (s->kind) {
    case MC_TS_SPLIT:
    case MC_TS_SPLIT_NEXT:
    case MC_TS_DIGITS1:
    case MC_TS_DIGITS:
    case MC_TS_PUNCT1: {
        const char *re = s->kind == MC_TS_DIGITS1  ? "\\p{N}"
                         : s->kind == MC_TS_DIGITS ? "\\p{N}+"
                         : s->kind == MC_TS_PUNCT1 ? "[\\p{P}!-/:-@\\[-`{-~]"
                                                   : s->regex;
        cJSON *pat = cJSON_AddObjectToObject(o, "pattern");
        bad |= !pat || !cJSON_AddStringToObject(pat, "Regex", re);
        bad |= !cJSON_AddStringToObject(o, "behavior", s->kind == MC_TS_SPLIT_NEXT ? "MergedWithNext" : "Isolated");
        bad |= !cJSON_AddFalseToObject(o, "invert");
        break;
    }
    case MC_TS_PUNCT:
        bad |= !cJSON_AddStringToObject(o, "behavior", "Contiguous");
        break;
    default:
        bad |= !cJSON_AddFalseToObject(o, "add_prefix_space");
        bad |= !cJSON_AddTrueToObject(o, "trim_offsets");
        bad |= !cJSON_AddBoolToObject(o, "use_regex", s->kind == MC_TS_BYTELEVEL_RE);
        break;
    }
    if (!bad) return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

cJSON *mc_tok_pre_json(const mc_tok_pre *p)
{
    size_t n = 0;
    while (n < MC_TOK_PRE_STEPS && p->steps[n].kind != MC_TS_END) n++;
    if (n == 1) return mc_tok_pre_step(&p->steps[0]);
    cJSON *seq = cJSON_CreateObject(), *list = NULL;
    int bad = !seq || !cJSON_AddStringToObject(seq, "type", "Sequence") || !(list = cJSON_AddArrayToObject(seq, "pretokenizers"));
    for (size_t i = 0; !bad && i < n; i++) {
        cJSON *step = mc_tok_pre_step(&p->steps[i]);
        if (!step) bad = 1;
        else cJSON_AddItemToArray(list, step);
    }
    if (!bad) return seq;
    cJSON_Delete(seq);
    return NULL;
}
