//! Hash tags: `{user1}.name` and `{user1}.mail` hash only `user1`, so they meet on
//! one node. Same rule as nutcracker's `hash_tag`.

/// The part of `key` that is hashed: the text between the first `tag[0]` and the
/// first `tag[1]` after it when that text is non-empty, else the whole key.
pub fn hashable_part(key: &[u8], tag: Option<[u8; 2]>) -> &[u8] {
    let Some([open, close]) = tag else {
        return key;
    };
    let Some(start) = key.iter().position(|&b| b == open) else {
        return key;
    };
    let inner = &key[start + 1..];
    match inner.iter().position(|&b| b == close) {
        Some(len) if len > 0 => &inner[..len],
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::hashable_part;

    const BRACES: Option<[u8; 2]> = Some(*b"{}");

    #[test]
    fn no_tag_configured_hashes_whole_key() {
        assert_eq!(hashable_part(b"{a}b", None), b"{a}b");
    }

    #[test]
    fn tag_part_is_hashed() {
        assert_eq!(hashable_part(b"{user1000}.following", BRACES), b"user1000");
        assert_eq!(hashable_part(b"x{a}y{b}", BRACES), b"a");
        assert_eq!(hashable_part(b"a{b{c}d", BRACES), b"b{c");
    }

    #[test]
    fn empty_or_open_tag_hashes_whole_key() {
        assert_eq!(hashable_part(b"{}x", BRACES), b"{}x");
        assert_eq!(hashable_part(b"{x", BRACES), b"{x");
        assert_eq!(hashable_part(b"}x{", BRACES), b"}x{");
        assert_eq!(hashable_part(b"", BRACES), b"");
        // The first open counts, even when its tag is empty and a later one is not.
        assert_eq!(hashable_part(b"{}{a}", BRACES), b"{}{a}");
    }

    #[test]
    fn same_open_and_close_byte() {
        assert_eq!(hashable_part(b"a$b$c", Some(*b"$$")), b"b");
        assert_eq!(hashable_part(b"a$$c", Some(*b"$$")), b"a$$c");
    }
}
