//! `error_kind!(E1, E2)`: small error kinds carrying a message, like Twisted tests' `E1("x")`.

/// Declares error kinds that carry a message and display it.
macro_rules! error_kind {
    ($($name:ident),*) => {$(
        #[derive(Debug, Clone, PartialEq, Eq)]
        struct $name(String);
        #[allow(dead_code)]
        impl $name {
            fn new(message: &str) -> Self {
                $name(message.to_owned())
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for $name {}
    )*};
}
