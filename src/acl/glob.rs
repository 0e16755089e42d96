//! Redis glob matching: a port of `stringmatchlen` (util.c), byte for byte.
//!
//! `*` any run, `?` any byte, `[abc]` / `[^abc]` / `[a-z]` classes, `\x` a literal
//! `x`. Case-sensitive (ACL patterns are). Recursion on `*` is bounded as in Redis
//! (a nesting limit returns "no match" rather than exhausting the stack).

/// Deepest `*` recursion before giving up (Redis uses 1000).
const MAX_NESTING: usize = 1000;

/// Whether `text` matches the glob `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, text, &mut skip_longer, 0)
}

fn match_impl(mut p: &[u8], mut s: &[u8], skip_longer: &mut bool, nesting: usize) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                return star(&p[1..], s, skip_longer, nesting);
            }
            b'?' => {}
            b'[' => {
                let (hit, rest) = class(&p[1..], s[0]);
                if !hit {
                    return false;
                }
                p = rest;
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if p[0] != s[0] {
                    return false;
                }
            }
            c => {
                if c != s[0] {
                    return false;
                }
            }
        }
        s = &s[1..];
        p = p.get(1..).unwrap_or_default();
        if s.is_empty() {
            while !p.is_empty() && p[0] == b'*' {
                p = &p[1..];
            }
            break;
        }
    }
    // As Redis: `*` does not match an empty string (ACL `~*` is "all keys" instead).
    p.is_empty() && s.is_empty()
}

/// `*` followed by `rest`: tries every suffix of `s` (Redis's `skipLonger`: once a
/// nested match ran out of text, longer attempts cannot succeed either).
fn star(rest: &[u8], mut s: &[u8], skip_longer: &mut bool, nesting: usize) -> bool {
    while !s.is_empty() {
        if match_impl(rest, s, skip_longer, nesting + 1) {
            return true;
        }
        if *skip_longer {
            return false;
        }
        s = &s[1..];
    }
    *skip_longer = true;
    false
}

/// A `[...]` class (after the `[`) against byte `c`: whether it matched, and the
/// pattern from the class's closing `]` (or the pattern's last byte when unclosed,
/// as Redis does).
fn class(mut p: &[u8], c: u8) -> (bool, &[u8]) {
    let not = p.first() == Some(&b'^');
    if not {
        p = &p[1..];
    }
    let mut hit = false;
    loop {
        match p {
            [b'\\', x, ..] => {
                p = &p[1..];
                hit |= *x == c;
            }
            [b']', ..] => break,
            // Unclosed: the class ends with the pattern.
            [] => return (hit != not, &[]),
            [lo, b'-', hi, ..] => {
                let (lo, hi) = if lo > hi { (*hi, *lo) } else { (*lo, *hi) };
                p = &p[2..];
                hit |= (lo..=hi).contains(&c);
            }
            [x, ..] => hit |= *x == c,
        }
        p = &p[1..];
    }
    (hit != not, p)
}

#[cfg(test)]
#[path = "glob_tests.rs"]
mod tests;
