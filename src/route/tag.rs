//! Hash tags. SKELETON: the route helper replaces this file.

/// The part of `key` that is hashed: the text between the first `tag[0]` and the
/// first `tag[1]` after it when that text is non-empty, else the whole key.
pub fn hashable_part(key: &[u8], tag: Option<[u8; 2]>) -> &[u8] {
    let _ = tag;
    key
}
