//! The last line of defence against printing a secret.
//!
//! Every secret the process learns (URL passwords, secret values, tokens, webhook
//! URLs) is registered here as soon as it is read; every output path (logs, stderr,
//! stdout, reports, Slack) passes its text through [`scrub`]. Messages are built
//! without secrets in the first place; this catches what a library put in an error.

use std::borrow::Cow;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Registers a secret. Very short values (under 4 chars) are not registered:
/// masking them would mangle ordinary text, and they protect nothing anyway.
pub fn register(secret: &str) {
    if secret.chars().count() < 4 {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers the password of a `scheme://user:password@host/...` URL, both as
/// written and percent-decoded.
pub fn register_url_password(url: &str) {
    if let Some(password) = url_password(url) {
        register(&password);
        register(&crate::conn::percent_decode(&password));
    }
}

/// Registers a webhook URL whole, its path (which is the credential of a Slack
/// webhook), and its last path segment (the token), so that no part that grants
/// posting can be printed even when a library shows only a piece of the URL.
pub fn register_webhook(url: &str) {
    let url = url.trim();
    register(url);
    let Some((_, rest)) = url.split_once("://") else {
        return;
    };
    if let Some(slash) = rest.find('/') {
        let path = &rest[slash..];
        register(path);
        let last = path
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        // Short segments are words ("hooks"), not tokens.
        if last.chars().count() >= 8 {
            register(last);
        }
    }
}

/// The password part of a URL, as written.
pub fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_string())
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_found_and_masked_raw_and_decoded() {
        register_url_password("postgres://app:p%40ss-word-1@h:5432/db");
        assert_eq!(scrub("x p%40ss-word-1 y"), "x *** y");
        assert_eq!(scrub("x p@ss-word-1 y"), "x *** y");
        assert_eq!(scrub("nothing here"), "nothing here");
    }

    #[test]
    fn webhook_url_path_and_token_are_masked() {
        register_webhook("https://hooks.example.test/services/T01/B02/Tok3n-AbCdEf-987");
        assert_eq!(
            scrub("posting to https://hooks.example.test/services/T01/B02/Tok3n-AbCdEf-987"),
            "posting to ***"
        );
        assert_eq!(scrub("path /services/T01/B02/Tok3n-AbCdEf-987"), "path ***");
        assert_eq!(scrub("token Tok3n-AbCdEf-987."), "token ***.");
        assert_eq!(scrub("services hooks"), "services hooks");
    }

    #[test]
    fn url_password_parsing() {
        assert_eq!(url_password("mysql://u:pw12@h/db").as_deref(), Some("pw12"));
        assert_eq!(url_password("mysql://u@h/db"), None);
        assert_eq!(url_password("mysql://h/db?x=a@b"), None);
        assert_eq!(
            url_password("postgres://u:a:b@c@h/db").as_deref(),
            Some("a:b@c")
        );
    }
}
