//! Key positions. SKELETON: the command helper replaces this file (Redis 7 key specs).

/// Why the keys of a request cannot be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// numkeys or a keyword is missing or out of range.
    #[error("syntax error")]
    Syntax,
}

/// Iterator over the argument indices of a request's keys.
#[derive(Clone, Debug)]
pub struct KeyIter {
    next: usize,
    last: usize,
    step: usize,
}

impl KeyIter {
    /// Keys from legacy first/last/step positions for a request of `argc` args.
    pub fn legacy(first: i32, last: i32, step: i32, argc: usize) -> Result<KeyIter, KeyError> {
        if first <= 0 || step <= 0 {
            return Ok(KeyIter {
                next: 1,
                last: 0,
                step: 1,
            });
        }
        let last = if last < 0 {
            argc as i64 + last as i64
        } else {
            last as i64
        };
        if last < 0 {
            return Err(KeyError::Syntax);
        }
        Ok(KeyIter {
            next: first as usize,
            last: (last as usize).min(argc.saturating_sub(1)),
            step: step as usize,
        })
    }
}

impl Iterator for KeyIter {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.next > self.last {
            return None;
        }
        let i = self.next;
        self.next += self.step;
        Some(i)
    }
}
