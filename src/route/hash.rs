//! Key hash functions: ringproxy's own, and the twelve of nutcracker 0.5.0.
//!
//! nutcracker's functions take `const char *`, and on x86-64 `char` is signed: a
//! byte >= 0x80 widened to an integer is sign-extended (0xff becomes 0xffffffff).
//! Where nutcracker widens a plain `char`, so do we (`sx32`); where it reads
//! bytes as unsigned, so do we. The longer functions live in the private `hashkit`
//! module.

use std::hash::Hasher;

use md5::{Digest, Md5};

use super::hashkit;

/// A key hash function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum HashFunction {
    /// ringproxy mode: 64-bit FNV-1a (`fnv` crate), passed through the MurmurHash3
    /// 64-bit finaliser so that keys differing in one byte land far apart, then folded
    /// to 32 bits as `h ^ (h >> 32)`.
    #[default]
    Ringproxy,
    /// nutcracker `fnv1a_64`: really 32-bit FNV-1a with the 64-bit constants truncated.
    Fnv1a64,
    /// nutcracker `fnv1_64`: 64-bit FNV-1, low 32 bits.
    Fnv1_64,
    /// nutcracker `fnv1a_32`.
    Fnv1a32,
    /// nutcracker `fnv1_32`.
    Fnv1_32,
    /// nutcracker `md5`: the first four digest bytes, little-endian.
    Md5,
    /// nutcracker `murmur`: MurmurHash2, seed `0xdeadbeef * len`.
    Murmur,
    /// nutcracker `crc16`: XMODEM table, register never masked to 16 bits.
    Crc16,
    /// nutcracker `crc32`: libmemcached's 15-bit variant of CRC-32.
    Crc32,
    /// nutcracker `crc32a`: plain CRC-32 (IEEE).
    Crc32a,
    /// nutcracker `hsieh`: Paul Hsieh's SuperFastHash.
    Hsieh,
    /// nutcracker `jenkins`: Bob Jenkins' lookup3 `hashlittle`, initval 13.
    Jenkins,
    /// nutcracker `one_at_a_time`: Bob Jenkins' one-at-a-time hash.
    OneAtATime,
}

/// Every function with its nutcracker name (ringproxy's own is named `ringproxy`).
const NAMES: [(HashFunction, &str); 13] = [
    (HashFunction::Ringproxy, "ringproxy"),
    (HashFunction::Fnv1a64, "fnv1a_64"),
    (HashFunction::Fnv1_64, "fnv1_64"),
    (HashFunction::Fnv1a32, "fnv1a_32"),
    (HashFunction::Fnv1_32, "fnv1_32"),
    (HashFunction::Md5, "md5"),
    (HashFunction::Murmur, "murmur"),
    (HashFunction::Crc16, "crc16"),
    (HashFunction::Crc32, "crc32"),
    (HashFunction::Crc32a, "crc32a"),
    (HashFunction::Hsieh, "hsieh"),
    (HashFunction::Jenkins, "jenkins"),
    (HashFunction::OneAtATime, "one_at_a_time"),
];

impl HashFunction {
    /// The twelve functions nutcracker 0.5.0 offers, in its own order of names.
    pub const NUTCRACKER: [HashFunction; 12] = [
        HashFunction::OneAtATime,
        HashFunction::Md5,
        HashFunction::Crc16,
        HashFunction::Crc32,
        HashFunction::Crc32a,
        HashFunction::Fnv1_64,
        HashFunction::Fnv1a64,
        HashFunction::Fnv1_32,
        HashFunction::Fnv1a32,
        HashFunction::Hsieh,
        HashFunction::Murmur,
        HashFunction::Jenkins,
    ];

    /// Hashes `key` to 32 bits.
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            HashFunction::Ringproxy => ringproxy(key),
            HashFunction::Fnv1a64 => fnv1a_64(key),
            HashFunction::Fnv1_64 => fnv1_64(key),
            HashFunction::Fnv1a32 => fnv1a_32(key),
            HashFunction::Fnv1_32 => fnv1_32(key),
            HashFunction::Md5 => md5_first_word(key),
            HashFunction::Murmur => hashkit::murmur(key),
            HashFunction::Crc16 => hashkit::crc16(key),
            HashFunction::Crc32 => hashkit::crc32(key),
            HashFunction::Crc32a => hashkit::crc32a(key),
            HashFunction::Hsieh => hashkit::hsieh(key),
            HashFunction::Jenkins => hashkit::jenkins(key),
            HashFunction::OneAtATime => one_at_a_time(key),
        }
    }

    /// Parses a hash name: nutcracker's (`fnv1a_64`, `murmur`, ...) or `ringproxy`.
    pub fn from_name(name: &str) -> Option<HashFunction> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    /// The name [`HashFunction::from_name`] accepts for this function.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("ringproxy", |(_, n)| n)
    }
}

/// Widens a byte the way C widens a signed `char` to 32 bits.
pub(crate) fn sx32(b: u8) -> u32 {
    b as i8 as i32 as u32
}

/// MD5 of `data` as 16 bytes.
pub(crate) fn md5_digest(data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Md5::digest(data));
    out
}

/// Little-endian u32 from four bytes of `bytes` starting at `at` (caller keeps it in range).
pub(crate) fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn ringproxy(key: &[u8]) -> u32 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(key);
    let h = fmix64(hasher.finish());
    (h ^ (h >> 32)) as u32
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
/// Plain FNV-1a changes mostly low bits for a change in the last byte, so `k1`..`k9`
/// would cluster on one arc of the ring.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn fnv1a_64(key: &[u8]) -> u32 {
    key.iter()
        .fold(0x8422_2325u32, |h, &b| (h ^ sx32(b)).wrapping_mul(0x1b3))
}

fn fnv1_64(key: &[u8]) -> u32 {
    let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        h.wrapping_mul(0x0100_0000_01b3) ^ (b as i8 as i64 as u64)
    });
    h as u32
}

fn fnv1a_32(key: &[u8]) -> u32 {
    key.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ sx32(b)).wrapping_mul(0x0100_0193)
    })
}

fn fnv1_32(key: &[u8]) -> u32 {
    key.iter().fold(0x811c_9dc5u32, |h, &b| {
        h.wrapping_mul(0x0100_0193) ^ sx32(b)
    })
}

fn md5_first_word(key: &[u8]) -> u32 {
    le32(&md5_digest(key), 0)
}

fn one_at_a_time(key: &[u8]) -> u32 {
    let mut v = key.iter().fold(0u32, |mut v, &b| {
        v = v.wrapping_add(sx32(b));
        v = v.wrapping_add(v << 10);
        v ^ (v >> 6)
    });
    v = v.wrapping_add(v << 3);
    v ^= v >> 11;
    v.wrapping_add(v << 15)
}

#[cfg(test)]
mod tests {
    use super::HashFunction as H;

    #[test]
    fn fnv1a_64_vectors_from_the_placement_notes() {
        assert_eq!(H::Fnv1a64.hash(b""), 0x8422_2325);
        assert_eq!(H::Fnv1a64.hash(b"foo"), 0xfed9_d577);
        assert_eq!(H::Fnv1a64.hash(b"\xff"), 0x79fe_466e);
    }

    /// "apple" vectors shared by libmemcached's and nutcracker's own unit tests.
    #[test]
    fn apple_vectors_for_every_nutcracker_function() {
        let cases = [
            (H::OneAtATime, 2_297_466_611u32),
            (H::Md5, 3_195_025_439),
            (H::Crc16, 3_662_830_516),
            (H::Crc32, 10_542),
            (H::Crc32a, 2_838_417_488),
            (H::Fnv1_32, 67_176_023),
            (H::Fnv1a32, 280_767_167),
            (H::Fnv1_64, 473_199_127),
            (H::Fnv1a64, 1_488_911_807),
            (H::Hsieh, 3_738_850_110),
            (H::Jenkins, 1_442_444_624),
            (H::Murmur, 4_142_305_122),
        ];
        for (f, want) in cases {
            assert_eq!(f.hash(b"apple"), want, "{}", f.name());
        }
    }

    #[test]
    fn ringproxy_is_fnv1a_64_folded() {
        // 64-bit FNV-1a of "" is the offset basis itself.
        let h: u64 = super::fmix64(0xcbf2_9ce4_8422_2325);
        assert_eq!(H::Ringproxy.hash(b""), (h ^ (h >> 32)) as u32);
        let h: u64 = super::fmix64(0xdcb2_7518_fed9_d577); // 64-bit FNV-1a of "foo"
        assert_eq!(H::Ringproxy.hash(b"foo"), (h ^ (h >> 32)) as u32);
        // Neighbouring keys spread over the whole circle.
        let spread = (0..8).map(|i| H::Ringproxy.hash(format!("k{i}").as_bytes()) >> 29);
        assert!(spread.collect::<std::collections::HashSet<_>>().len() >= 4);
    }

    #[test]
    fn names_round_trip() {
        for f in H::NUTCRACKER.into_iter().chain([H::Ringproxy]) {
            assert_eq!(H::from_name(f.name()), Some(f));
        }
        assert_eq!(H::from_name("fnv1a_64"), Some(H::Fnv1a64));
        assert_eq!(H::from_name("one_at_a_time"), Some(H::OneAtATime));
        assert_eq!(H::from_name("FNV1A_64"), None);
        assert_eq!(H::from_name("sha1"), None);
    }

    #[test]
    fn empty_keys_do_not_panic() {
        for f in H::NUTCRACKER {
            let _ = f.hash(b"");
        }
        assert_eq!(H::Hsieh.hash(b""), 0);
        assert_eq!(H::Jenkins.hash(b""), 0xdead_beef + 13);
        assert_eq!(H::Crc16.hash(b""), 0);
    }
}
