//! The web UI's users, as `user.conf` lists them: the bcrypt password check. Pure and
//! synchronous (bcrypt is slow on purpose, so callers run [`verify`] on a blocking
//! thread); the users themselves come from the configuration and sessions live in
//! [`super::session`].

use crate::config::UserConfig;

/// A bcrypt hash of a password nobody knows, checked when the name is unknown so that
/// a wrong name costs as long as a wrong password.
const DUMMY_HASH: &str = "$2a$10$9XMRfqpnzY2421fwYm5dd.CidJf7dHHWIESeeNGXuajHRf.Lqzy7a";

/// Why a login was refused. The web UI and the API show one message for all of them.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Empty name or password.
    #[error("empty user name or password")]
    Empty,
    /// No user of this name.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The password does not match.
    #[error("wrong password for user {0:?}")]
    WrongPassword(String),
    /// The user's hash in `user.conf` is not a bcrypt hash.
    #[error("user {user:?}: the password in user.conf is not a bcrypt hash: {source}")]
    BadHash {
        /// The user.
        user: String,
        /// What bcrypt said.
        source: bcrypt::BcryptError,
    },
}

/// Checks `name` and `password` (both already trimmed) against `users`; the matching
/// user's name on success. Names are case-sensitive, as in the original. Any `$2?$`
/// variant and cost are accepted.
pub fn verify(users: &[UserConfig], name: &str, password: &str) -> Result<String, LoginError> {
    if name.is_empty() || password.is_empty() {
        return Err(LoginError::Empty);
    }
    let Some(user) = users.iter().find(|u| u.name == name) else {
        let _ = bcrypt::verify(password, DUMMY_HASH);
        return Err(LoginError::UnknownUser(name.to_string()));
    };
    match bcrypt::verify(password, &user.password_hash) {
        Ok(true) => Ok(user.name.clone()),
        Ok(false) => Err(LoginError::WrongPassword(user.name.clone())),
        Err(source) => Err(LoginError::BadHash {
            user: user.name.clone(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Vec<UserConfig> {
        vec![
            UserConfig {
                name: "admin".into(),
                password_hash: DUMMY_HASH.into(),
            },
            UserConfig {
                name: "broken".into(),
                password_hash: "plain".into(),
            },
        ]
    }

    #[test]
    fn the_original_test_hash_is_s3cret() {
        assert_eq!(verify(&users(), "admin", "s3cret").unwrap(), "admin");
    }

    #[test]
    fn wrong_unknown_empty_and_broken_are_refused() {
        let users = users();
        assert!(matches!(
            verify(&users, "admin", "nope"),
            Err(LoginError::WrongPassword(_))
        ));
        assert!(matches!(
            verify(&users, "Admin", "s3cret"),
            Err(LoginError::UnknownUser(_))
        ));
        assert!(matches!(
            verify(&users, "admin", ""),
            Err(LoginError::Empty)
        ));
        assert!(matches!(
            verify(&users, "broken", "plain"),
            Err(LoginError::BadHash { .. })
        ));
    }
}
