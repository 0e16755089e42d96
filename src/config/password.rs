//! A password held in config: usable as a `&str`, never shown by `Debug`.

use std::fmt;
use std::ops::Deref;

/// A password. `Debug` prints `<redacted>`, so a config, a topology or a connection
/// spec can be debug-printed without its secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<String> for Password {
    fn from(s: String) -> Password {
        Password(s)
    }
}

impl Deref for Password {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_it() {
        let p = Password::from("hunter2".to_string());
        assert_eq!(
            format!("{p:?} {:?}", Some(p.clone())),
            "<redacted> Some(<redacted>)"
        );
        assert_eq!(&*p, "hunter2");
    }
}
