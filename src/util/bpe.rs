//! Byte-level byte-pair encoding, GPT-2's scheme, as Whisper's and the reply model's
//! tokenizers both use it: the byte-to-unicode alphabet token texts are spelled in, the
//! ranked merges, and the merge loop. What differs between the two tokenizers (where the
//! vocabulary and its ranks come from, special tokens, how text is split into words first)
//! stays with them.
//!
//! A word starts as one symbol per byte; the adjacent pair with the best (lowest) merge rank
//! is merged, leftmost among equals, until no adjacent pair has a rank. Symbols are token
//! ids; a merge whose result is not itself a token (possible with a merge list) gets a symbol
//! id past the vocabulary, and such a piece left at the end is written as byte tokens.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::OnceLock;

/// GPT-2's byte-to-unicode alphabet: printable Latin-1 characters stand for their own byte,
/// the other bytes for U+0100 onwards, in order.
pub struct ByteAlphabet {
    byte_of: HashMap<char, u8>,
    char_of: [char; 256],
}

impl ByteAlphabet {
    /// The character that stands for a byte.
    pub fn char_of(&self, byte: u8) -> char {
        self.char_of[byte as usize]
    }

    /// The byte a character of the alphabet stands for.
    pub fn byte_of(&self, c: char) -> Option<u8> {
        self.byte_of.get(&c).copied()
    }

    /// The bytes a token text spells, if every character is in the alphabet.
    pub fn decode(&self, text: &str) -> Option<Vec<u8>> {
        text.chars().map(|c| self.byte_of(c)).collect()
    }
}

/// The alphabet, built once.
pub fn byte_alphabet() -> &'static ByteAlphabet {
    static ALPHABET: OnceLock<ByteAlphabet> = OnceLock::new();
    ALPHABET.get_or_init(|| {
        let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let mut next = 0x100u32;
        let mut char_of = ['\0'; 256];
        for (b, c) in (0..=255u8).zip(char_of.iter_mut()) {
            *c = if printable(b) {
                char::from(b)
            } else {
                // 68 bytes are not printable, so `next` stays below U+0144.
                let c = char::from_u32(next).unwrap_or(char::REPLACEMENT_CHARACTER);
                next += 1;
                c
            };
        }
        let byte_of = (0..=255u8).map(|b| (char_of[b as usize], b)).collect();
        ByteAlphabet { byte_of, char_of }
    })
}

/// Why a vocabulary numbered in merge order cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RankError {
    #[error("token {id} {bytes:?} repeats token {first}")]
    Repeated { id: u32, first: u32, bytes: Vec<u8> },
    #[error("no token for the single byte {byte:#04x}")]
    MissingByte { byte: u8 },
}

/// The merge table of a byte-level BPE vocabulary and the merge loop.
#[derive(Clone, Debug)]
pub struct BytePairs {
    /// Symbols below this are tokens.
    n_vocab: u32,
    /// (left symbol, right symbol) → (rank, merged symbol).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// The symbol of each byte (256 entries).
    byte_symbols: Vec<u32>,
    /// The bytes of the symbols that are not tokens, from `n_vocab` on.
    extra_symbols: Vec<Vec<u8>>,
    /// The token of each byte (256 entries), for pieces that end as non-tokens.
    byte_tokens: Vec<Option<u32>>,
    /// Tokens by their bytes.
    by_bytes: TokenIndex,
}

/// Tokens looked up by their bytes: the bytes of all of them in one buffer, sorted, beside
/// their ids. A map with a buffer per token took 3.5 MiB for Whisper's 51,864 tokens, this
/// 0.7 MiB, at the cost of a binary search per lookup (one per word encoded).
#[derive(Clone, Debug)]
struct TokenIndex {
    /// The tokens' bytes one after the other, in the order of their bytes.
    bytes: Vec<u8>,
    /// Where each token's bytes end in `bytes` (and the next one's begin).
    ends: Vec<u32>,
    /// Each token's id.
    ids: Vec<u32>,
}

impl TokenIndex {
    fn new(by_bytes: HashMap<Vec<u8>, u32>) -> Self {
        let mut entries: Vec<(Vec<u8>, u32)> = by_bytes.into_iter().collect();
        entries.sort_unstable();
        let mut bytes = Vec::with_capacity(entries.iter().map(|(b, _)| b.len()).sum());
        let mut ends = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        for (token, id) in entries {
            bytes.extend_from_slice(&token);
            ends.push(bytes.len() as u32);
            ids.push(id);
        }
        TokenIndex { bytes, ends, ids }
    }

    /// The bytes of the `i`-th token in byte order.
    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start as usize..self.ends[i] as usize]
    }

    fn get(&self, bytes: &[u8]) -> Option<u32> {
        let (mut lo, mut hi) = (0, self.ids.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(bytes) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.ids[mid]),
            }
        }
        None
    }
}

impl BytePairs {
    /// From an explicit merge list, best first (GGUF's `tokenizer.ggml.merges`). `tokens` are
    /// the bytes of each token id, `None` for tokens no merge can produce (texts outside the
    /// alphabet); where two tokens have the same bytes, the first is used. A pair listed
    /// twice keeps its first rank.
    pub fn from_merges(
        tokens: &[Option<Vec<u8>>],
        merges: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Self {
        let mut by_bytes = HashMap::with_capacity(tokens.len());
        for (id, bytes) in tokens.iter().enumerate() {
            if let Some(bytes) = bytes {
                by_bytes.entry(bytes.clone()).or_insert(id as u32);
            }
        }
        let n_vocab = tokens.len() as u32;
        let mut symbols: HashMap<Vec<u8>, u32> = by_bytes.clone();
        let mut extra_symbols: Vec<Vec<u8>> = Vec::new();
        let mut intern = |bytes: Vec<u8>| -> u32 {
            if let Some(&id) = symbols.get(&bytes) {
                return id;
            }
            let id = n_vocab + extra_symbols.len() as u32;
            extra_symbols.push(bytes.clone());
            symbols.insert(bytes, id);
            id
        };
        let byte_symbols: Vec<u32> = (0..=255u8).map(|b| intern(vec![b])).collect();
        let mut table = HashMap::new();
        for (rank, (left, right)) in merges.into_iter().enumerate() {
            let merged = intern([left.as_slice(), right.as_slice()].concat());
            let pair = (intern(left), intern(right));
            table.entry(pair).or_insert((rank as u32, merged));
        }
        let byte_tokens = (0..=255u8)
            .map(|b| by_bytes.get(&vec![b]).copied())
            .collect();
        BytePairs {
            n_vocab,
            merges: table,
            byte_symbols,
            extra_symbols,
            byte_tokens,
            by_bytes: TokenIndex::new(by_bytes),
        }
    }

    /// From a vocabulary numbered in merge order (GPT-2's and Whisper's, as tiktoken reads
    /// them): two pieces merge when together they are a token, and that token's id is the
    /// rank. Empty tokens are skipped; tokens must be distinct and every byte must be one.
    pub fn from_ranked_tokens(tokens: &[Vec<u8>]) -> Result<Self, RankError> {
        let mut by_bytes: HashMap<Vec<u8>, u32> = HashMap::with_capacity(tokens.len());
        for (id, bytes) in tokens.iter().enumerate() {
            let id = id as u32;
            if bytes.is_empty() {
                continue;
            }
            if let Some(first) = by_bytes.insert(bytes.clone(), id) {
                return Err(RankError::Repeated {
                    id,
                    first,
                    bytes: bytes.clone(),
                });
            }
        }
        let byte_tokens: Vec<Option<u32>> = (0..=255u8)
            .map(|b| by_bytes.get(&[b][..]).copied())
            .collect();
        let byte_symbols = byte_tokens
            .iter()
            .enumerate()
            .map(|(b, t)| t.ok_or(RankError::MissingByte { byte: b as u8 }))
            .collect::<Result<Vec<u32>, _>>()?;
        // Every way of cutting a token into two tokens is a merge to it.
        let mut merges = HashMap::new();
        for (bytes, &id) in &by_bytes {
            for cut in 1..bytes.len() {
                let (left, right) = bytes.split_at(cut);
                if let (Some(&l), Some(&r)) = (by_bytes.get(left), by_bytes.get(right)) {
                    merges.insert((l, r), (id, id));
                }
            }
        }
        Ok(BytePairs {
            n_vocab: tokens.len() as u32,
            merges,
            byte_symbols,
            extra_symbols: Vec::new(),
            byte_tokens,
            by_bytes: TokenIndex::new(by_bytes),
        })
    }

    /// The token whose bytes are exactly `bytes`.
    pub fn token(&self, bytes: &[u8]) -> Option<u32> {
        self.by_bytes.get(bytes)
    }

    /// Appends the tokens of one word: its bytes merged pairwise, lowest rank first and
    /// leftmost among equals; a piece that ends as no token is written byte by byte.
    pub fn encode_word(&self, word: &[u8], out: &mut Vec<u32>) {
        // Symbols form a linked list over the word; a merge keeps the left one and unlinks the
        // right one. Candidate pairs wait in a heap and are dropped when popped if either side
        // has changed since.
        let n = word.len();
        let mut ids: Vec<u32> = word
            .iter()
            .map(|&b| self.byte_symbols[b as usize])
            .collect();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let candidate = |ids: &[u32], left: usize, right: usize| {
            self.merges
                .get(&(ids[left], ids[right]))
                .map(|&(rank, _)| Reverse((rank, left, right, ids[left], ids[right])))
        };
        heap.extend((1..n).filter_map(|i| candidate(&ids, i - 1, i)));
        while let Some(Reverse((_, left, right, left_id, right_id))) = heap.pop() {
            let current = alive[left]
                && alive[right]
                && next[left] == right
                && ids[left] == left_id
                && ids[right] == right_id;
            if !current {
                continue;
            }
            ids[left] = self.merges[&(left_id, right_id)].1;
            alive[right] = false;
            next[left] = next[right];
            if next[right] < n {
                prev[next[right]] = left;
            }
            if prev[left] < n {
                heap.extend(candidate(&ids, prev[left], left));
            }
            if next[left] < n {
                heap.extend(candidate(&ids, left, next[left]));
            }
        }
        for i in (0..n).filter(|&i| alive[i]) {
            let id = ids[i];
            match id.checked_sub(self.n_vocab) {
                None => out.push(id),
                Some(extra) => out.extend(
                    self.extra_symbols[extra as usize]
                        .iter()
                        .filter_map(|&b| self.byte_tokens[b as usize]),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(bpe: &BytePairs, word: &str) -> Vec<u32> {
        let mut out = Vec::new();
        bpe.encode_word(word.as_bytes(), &mut out);
        out
    }

    /// 256 byte tokens, then the given ones.
    fn ranked(extra: &[&str]) -> Vec<Vec<u8>> {
        (0..=255u8)
            .map(|b| vec![b])
            .chain(extra.iter().map(|t| t.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_alphabet_spells_every_byte_once() {
        let alphabet = byte_alphabet();
        assert_eq!(alphabet.byte_of('!'), Some(b'!'));
        assert_eq!(alphabet.byte_of('\u{0100}'), Some(0));
        assert_eq!(alphabet.byte_of('Ġ'), Some(b' '));
        assert_eq!(alphabet.byte_of(' '), None);
        assert_eq!(alphabet.decode("Ġhi"), Some(b" hi".to_vec()));
        for b in 0..=255u8 {
            assert_eq!(alphabet.byte_of(alphabet.char_of(b)), Some(b));
        }
        assert_eq!(
            alphabet.byte_of.len(),
            256,
            "no two bytes share a character"
        );
    }

    #[test]
    fn ranked_tokens_merge_lowest_id_first_and_leftmost_among_equals() {
        // 256 "ab", 257 "bc", 258 "abc", 259 "aa"
        let bpe = BytePairs::from_ranked_tokens(&ranked(&["ab", "bc", "abc", "aa"])).unwrap();
        assert_eq!(encode(&bpe, "abc"), [258]); // ab first, then ab+c
        assert_eq!(encode(&bpe, "bca"), [257, u32::from(b'a')]);
        assert_eq!(encode(&bpe, "aaa"), [259, u32::from(b'a')]);
        assert_eq!(encode(&bpe, "x"), [u32::from(b'x')]);
        assert_eq!(encode(&bpe, ""), Vec::<u32>::new());
        assert_eq!(bpe.token(b"bc"), Some(257));
    }

    #[test]
    fn every_token_is_found_by_its_bytes_and_nothing_else() {
        let tokens = ranked(&["ab", "abc", "b c", "\u{e9}t\u{e9}"]);
        let bpe = BytePairs::from_ranked_tokens(&tokens).unwrap();
        for (id, bytes) in tokens.iter().enumerate() {
            assert_eq!(bpe.token(bytes), Some(id as u32), "{bytes:?}");
        }
        for absent in [&b""[..], b"abcd", b"ba", b"b c "] {
            assert_eq!(bpe.token(absent), None, "{absent:?}");
        }
    }

    #[test]
    fn ranked_tokens_must_be_distinct_and_cover_every_byte() {
        let err = BytePairs::from_ranked_tokens(&ranked(&["ab", "ab"])).unwrap_err();
        assert_eq!(err.to_string(), "token 257 [97, 98] repeats token 256");
        let err = BytePairs::from_ranked_tokens(&ranked(&[])[1..]).unwrap_err();
        assert_eq!(err, RankError::MissingByte { byte: 0 });
    }

    #[test]
    fn merge_lists_rank_pairs_and_fall_back_to_bytes() {
        let tokens: Vec<Option<Vec<u8>>> = ranked(&["ab", "abc"]).into_iter().map(Some).collect();
        let pair = |l: &str, r: &str| (l.as_bytes().to_vec(), r.as_bytes().to_vec());
        // "c d" makes "cd", which is not a token: left at the end it becomes bytes.
        let bpe =
            BytePairs::from_merges(&tokens, [pair("a", "b"), pair("ab", "c"), pair("c", "d")]);
        assert_eq!(encode(&bpe, "abc"), [257]);
        assert_eq!(encode(&bpe, "cd"), [u32::from(b'c'), u32::from(b'd')]);
        assert_eq!(encode(&bpe, "bc"), [u32::from(b'b'), u32::from(b'c')]);
    }
}
