//! The longer nutcracker 0.5.0 hash functions (CRC, MurmurHash2, SuperFastHash,
//! lookup3), each written to give the same 32 bits as nutcracker on x86-64,
//! quirks included. Only [`super::hash::HashFunction`] calls these.

use super::hash::{le32, sx32};

/// XMODEM CRC-16 table (polynomial 0x1021, most significant bit first).
const CRC16_TABLE: [u16; 256] = crc16_table();

/// Reflected CRC-32 table (polynomial 0xedb88320).
const CRC32_TABLE: [u32; 256] = crc32_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000 != 0 {
                (r << 1) ^ 0x1021
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = i as u32;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 1 != 0 {
                (r >> 1) ^ 0xedb8_8320
            } else {
                r >> 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

/// nutcracker 0.5.0 `crc16`: the register is a 32-bit integer shifted left and never
/// masked, so bits above 16 keep what was shifted out (only the low 16 bits are a CRC).
pub(crate) fn crc16(key: &[u8]) -> u32 {
    key.iter().fold(0u32, |crc, &b| {
        let index = ((crc >> 8) ^ sx32(b)) & 0xff;
        (crc << 8) ^ u32::from(CRC16_TABLE[index as usize])
    })
}

fn crc32_register(key: &[u8]) -> u32 {
    key.iter().fold(u32::MAX, |crc, &b| {
        (crc >> 8) ^ CRC32_TABLE[((crc ^ u32::from(b)) & 0xff) as usize]
    })
}

/// nutcracker `crc32` (libmemcached's): bits 16..31 of the CRC-32, top bit cleared.
pub(crate) fn crc32(key: &[u8]) -> u32 {
    (!crc32_register(key) >> 16) & 0x7fff
}

/// nutcracker `crc32a`: the standard CRC-32.
pub(crate) fn crc32a(key: &[u8]) -> u32 {
    !crc32_register(key)
}

/// nutcracker `murmur`: MurmurHash2 with seed `0xdeadbeef * len`, words read little-endian.
pub(crate) fn murmur(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let len = key.len() as u32;
    let mut h = 0xdead_beefu32.wrapping_mul(len) ^ len;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = le32(chunk, 0).wrapping_mul(M);
        k ^= k >> 24;
        h = h.wrapping_mul(M) ^ k.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let folded = tail
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc ^ (u32::from(b) << (8 * i)));
        h = (h ^ folded).wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

fn get16(bytes: &[u8], at: usize) -> u32 {
    u32::from(bytes[at]) | (u32::from(bytes[at + 1]) << 8)
}

/// nutcracker `hsieh`: SuperFastHash; the third byte of a 3-byte tail is read as a
/// signed `char`, the rest unsigned. Empty key: 0.
pub(crate) fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let mut chunks = key.chunks_exact(4);
    let mut h = 0u32;
    for c in &mut chunks {
        h = h.wrapping_add(get16(c, 0));
        let tmp = (get16(c, 2) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h = h.wrapping_add(h >> 11);
    }
    h = hsieh_tail(h, chunks.remainder());
    h ^= h << 3;
    h = h.wrapping_add(h >> 5);
    h ^= h << 4;
    h = h.wrapping_add(h >> 17);
    h ^= h << 25;
    h.wrapping_add(h >> 6)
}

fn hsieh_tail(mut h: u32, tail: &[u8]) -> u32 {
    match tail.len() {
        3 => {
            h = h.wrapping_add(get16(tail, 0));
            h ^= h << 16;
            h ^= sx32(tail[2]) << 18;
            h.wrapping_add(h >> 11)
        }
        2 => {
            h = h.wrapping_add(get16(tail, 0));
            h ^= h << 11;
            h.wrapping_add(h >> 17)
        }
        1 => {
            h = h.wrapping_add(u32::from(tail[0]));
            h ^= h << 10;
            h.wrapping_add(h >> 1)
        }
        _ => h,
    }
}

/// The three-word state of lookup3.
struct Lookup3 {
    a: u32,
    b: u32,
    c: u32,
}

impl Lookup3 {
    fn add(&mut self, words: &[u8]) {
        self.a = self.a.wrapping_add(le32(words, 0));
        self.b = self.b.wrapping_add(le32(words, 4));
        self.c = self.c.wrapping_add(le32(words, 8));
    }

    fn mix(&mut self) {
        let Lookup3 { a, b, c } = self;
        step(a, *b, c, 4);
        step(b, *c, a, 6);
        step(c, *a, b, 8);
        step(a, *b, c, 16);
        step(b, *c, a, 19);
        step(c, *a, b, 4);
    }

    fn finish(&mut self) -> u32 {
        let Lookup3 { a, b, c } = self;
        *c = (*c ^ *b).wrapping_sub(b.rotate_left(14));
        *a = (*a ^ *c).wrapping_sub(c.rotate_left(11));
        *b = (*b ^ *a).wrapping_sub(a.rotate_left(25));
        *c = (*c ^ *b).wrapping_sub(b.rotate_left(16));
        *a = (*a ^ *c).wrapping_sub(c.rotate_left(4));
        *b = (*b ^ *a).wrapping_sub(a.rotate_left(14));
        *c = (*c ^ *b).wrapping_sub(b.rotate_left(24));
        *c
    }
}

/// One lookup3 mixing step: `x -= z; x ^= rot(z, r); z += y`.
fn step(x: &mut u32, y: u32, z: &mut u32, r: u32) {
    *x = x.wrapping_sub(*z) ^ z.rotate_left(r);
    *z = z.wrapping_add(y);
}

/// nutcracker `jenkins`: lookup3 `hashlittle` with initval 13 (all of its read paths
/// give the same value on little-endian machines). Empty key: `0xdeadbeef + 13`.
pub(crate) fn jenkins(key: &[u8]) -> u32 {
    hashlittle(key, 13)
}

fn hashlittle(key: &[u8], initval: u32) -> u32 {
    let init = 0xdead_beefu32
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    if key.is_empty() {
        return init;
    }
    let mut s = Lookup3 {
        a: init,
        b: init,
        c: init,
    };
    let mut rest = key;
    while rest.len() > 12 {
        s.add(&rest[..12]);
        s.mix();
        rest = &rest[12..];
    }
    let mut last = [0u8; 12];
    last[..rest.len()].copy_from_slice(rest);
    s.add(&last);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_known_entries() {
        assert_eq!(&CRC16_TABLE[..4], &[0x0000, 0x1021, 0x2042, 0x3063]);
        assert_eq!(CRC16_TABLE[255], 0x1ef0);
        assert_eq!(
            &CRC32_TABLE[..4],
            &[0, 0x7707_3096, 0xee0e_612c, 0x9909_51ba]
        );
        assert_eq!(CRC32_TABLE[255], 0x2d02_ef8d);
    }

    #[test]
    fn crc32a_is_standard_crc32() {
        assert_eq!(crc32a(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn crc16_low_bits_are_xmodem() {
        assert_eq!(crc16(b"123456789") & 0xffff, 0x31c3);
    }

    #[test]
    fn lookup3_reference_values() {
        let text = b"Four score and seven years ago";
        assert_eq!(hashlittle(b"", 0), 0xdead_beef);
        assert_eq!(hashlittle(text, 0), 0x1777_0551);
        assert_eq!(hashlittle(text, 1), 0xcd62_8161);
    }
}
