//! Signup, login, sessions and their refusals.

use std::time::Duration;

use bytes::Bytes;
use fastchat_proto::{
    ErrorCode, FetchKey, ListConversations, Login, Logout, PublishKey, Resume, Signup,
};
use fastchat_server::Config;
use fastchat_server::accounts::LoginLimits;

use crate::support::{Client, Fixture, connect, password};

fn code(e: &fastchat_link::LinkError) -> ErrorCode {
    e.server_error()
        .map(|b| b.code)
        .unwrap_or_else(|| panic!("not a server error: {e}"))
}

async fn signup_then_login_and_wrong_password_and_duplicate() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    assert_eq!(alice.session.username, "alice");

    let again = Client::login(&fx.addr(), "alice").await;
    assert_ne!(
        again.session.token, alice.session.token,
        "each login is its own session"
    );

    let (link, _pushes) = connect(&fx.addr()).await;
    let wrong = link
        .request(Login {
            username: "alice".into(),
            password: "not-her-password".into(),
        })
        .await
        .expect_err("wrong password");
    assert_eq!(code(&wrong), ErrorCode::BadCredentials);
    let unknown = link
        .request(Login {
            username: "nobody".into(),
            password: password("nobody"),
        })
        .await
        .expect_err("unknown user");
    assert_eq!(
        code(&unknown),
        ErrorCode::BadCredentials,
        "unknown users look like wrong passwords"
    );
    let unauthenticated = link
        .request(ListConversations {})
        .await
        .expect_err("not logged in");
    assert_eq!(code(&unauthenticated), ErrorCode::NotAuthenticated);

    let duplicate = link
        .request(Signup {
            username: "alice".into(),
            password: password("alice"),
            public_key: Bytes::from_static(b"k"),
        })
        .await
        .expect_err("duplicate");
    assert_eq!(code(&duplicate), ErrorCode::UsernameTaken);
}

async fn invalid_usernames_and_passwords_are_refused_with_reasons() {
    let fx = Fixture::start().await;
    let (link, _pushes) = connect(&fx.addr()).await;
    let signup = |username: &str, password: &str| Signup {
        username: username.into(),
        password: password.into(),
        public_key: Bytes::from_static(b"k"),
    };
    let e = link
        .request(signup("Bad Name", "long enough pw"))
        .await
        .expect_err("bad name");
    assert_eq!(code(&e), ErrorCode::InvalidUsername);
    assert!(e.to_string().contains("lowercase"), "{e}");
    let e = link
        .request(signup("carol", "short"))
        .await
        .expect_err("short password");
    assert_eq!(code(&e), ErrorCode::InvalidPassword);
    let big_key = Signup {
        username: "carol".into(),
        password: "long enough pw".into(),
        public_key: Bytes::from(vec![0; 5000]),
    };
    assert_eq!(
        code(&link.request(big_key).await.expect_err("key too large")),
        ErrorCode::TooLarge
    );
    // None of those created an account.
    let e = link
        .request(Login {
            username: "carol".into(),
            password: "long enough pw".into(),
        })
        .await
        .expect_err("no account");
    assert_eq!(code(&e), ErrorCode::BadCredentials);
}

async fn failed_logins_are_throttled_per_user() {
    let config = Config {
        login_limits: LoginLimits {
            per_user: 3,
            per_address: 100,
            window: Duration::from_secs(600),
        },
        ..Config::default()
    };
    let fx = Fixture::with_config(config).await;
    fx.signup("alice").await;
    let (link, _pushes) = connect(&fx.addr()).await;
    for _ in 0..3 {
        let e = link
            .request(Login {
                username: "alice".into(),
                password: "guess-guess".into(),
            })
            .await
            .expect_err("wrong");
        assert_eq!(code(&e), ErrorCode::BadCredentials);
    }
    // Now even the right password is refused until the window passes.
    let e = link
        .request(Login {
            username: "alice".into(),
            password: password("alice"),
        })
        .await
        .expect_err("throttled");
    assert_eq!(code(&e), ErrorCode::TooManyAttempts);
    assert!(code(&e).is_retryable());
    // Another user from the same address is not affected.
    fx.signup("bob").await;
    Client::login(&fx.addr(), "bob").await;
}

async fn sessions_resume_on_a_new_connection_until_logout() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let token = alice.session.token.clone();

    let (link, _pushes) = connect(&fx.addr()).await;
    let resumed = link
        .request(Resume {
            token: token.clone(),
        })
        .await
        .expect("resumes");
    assert_eq!(resumed.username, "alice");
    let again = link
        .request(Resume {
            token: token.clone(),
        })
        .await
        .expect_err("already in");
    assert_eq!(code(&again), ErrorCode::AlreadyAuthenticated);

    alice.link.request(Logout {}).await.expect("logout");
    let e = alice
        .link
        .request(ListConversations {})
        .await
        .expect_err("logged out");
    assert_eq!(code(&e), ErrorCode::NotAuthenticated);
    let (link2, _pushes2) = connect(&fx.addr()).await;
    let e = link2
        .request(Resume { token })
        .await
        .expect_err("token revoked");
    assert_eq!(code(&e), ErrorCode::InvalidSession);
}

async fn public_key_directory() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let bob = fx.signup("bob").await;
    let key = bob
        .link
        .request(FetchKey {
            username: "alice".into(),
        })
        .await
        .expect("found");
    assert_eq!(key.public_key, Bytes::from_static(b"public key of alice"));
    alice
        .link
        .request(PublishKey {
            public_key: Bytes::from_static(b"new key"),
        })
        .await
        .expect("published");
    let key = bob
        .link
        .request(FetchKey {
            username: "alice".into(),
        })
        .await
        .expect("found");
    assert_eq!(key.public_key, Bytes::from_static(b"new key"));
    let e = bob
        .link
        .request(FetchKey {
            username: "zed".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(code(&e), ErrorCode::UnknownUser);
}

on_both_backends!(
    signup_then_login_and_wrong_password_and_duplicate,
    invalid_usernames_and_passwords_are_refused_with_reasons,
    failed_logins_are_throttled_per_user,
    sessions_resume_on_a_new_connection_until_logout,
    public_key_directory,
);
