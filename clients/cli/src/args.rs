//! The command line, as clap types. Parsing only: nothing here talks to the daemon.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use clap_complete::Shell;
use fastchat_api::ConversationRef;

/// fastchatctl: FastChat from the command line, through the profile's fastchatd (started
/// when none runs).
#[derive(Debug, Parser)]
#[command(name = "fastchatctl", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, before or after the command's name.
#[derive(Debug, Args)]
pub struct Global {
    /// The profile (one daemon, account and history per profile).
    #[arg(
        long,
        global = true,
        env = "FASTCHAT_PROFILE",
        default_value = "default",
        value_name = "NAME",
        value_parser = fastchat_api::paths::parse_profile
    )]
    pub profile: String,
    /// The daemon's socket [default: $XDG_RUNTIME_DIR/fastchat/<profile>.sock].
    #[arg(long, global = true, env = "FASTCHAT_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print results as JSON, one object per line (lists: one element per line).
    #[arg(long, global = true)]
    pub json: bool,
    /// Fail (exit 3) instead of starting fastchatd when none runs for the profile.
    #[arg(long, global = true)]
    pub no_autostart: bool,
    /// The load balancer a started fastchatd asks for servers.
    #[arg(long, global = true, value_name = "ADDR")]
    pub balancer: Option<String>,
    /// A server a started fastchatd may use (repeatable).
    #[arg(long = "server", global = true, value_name = "ADDR")]
    pub servers: Vec<String>,
}

impl Global {
    /// The socket to talk to: `--socket`, else the profile's default.
    #[must_use]
    pub fn socket_path(&self) -> PathBuf {
        fastchat_api::paths::socket_or_default(&self.profile, self.socket.as_deref())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account (and log in to it).
    Signup(Credentials),
    /// Log in, unlocking the profile's identity key.
    Login(Credentials),
    /// Log out.
    Logout,
    /// Show who is logged in, the server in use and what is unread.
    Status,
    /// Send a text message.
    Send {
        #[command(flatten)]
        to: Target,
        /// The text (words are joined by spaces); a single `-` reads it from stdin.
        #[arg(required = true, value_name = "TEXT")]
        text: Vec<String>,
    },
    /// Send an image file.
    SendImage {
        #[command(flatten)]
        to: Target,
        /// The image file.
        path: PathBuf,
    },
    /// Create, change and list groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Print a conversation's messages, oldest first.
    History {
        #[command(flatten)]
        to: Target,
        /// How many of the newest messages to print [default: the daemon's, 50].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
    /// Print messages as they arrive (of one conversation, or all) until interrupted.
    Watch {
        #[command(flatten)]
        to: MaybeTarget,
    },
    /// Show and verify safety numbers (key fingerprints).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List the servers, marking the one in use with `*`.
    Servers,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: Shell,
    },
}

#[derive(Debug, Args)]
pub struct Credentials {
    /// The account's username.
    pub username: String,
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// A conversation that must be named: exactly one of `--group` and `--user`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// The group.
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// The user (the direct conversation with them).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

impl Target {
    /// The conversation named.
    #[must_use]
    pub fn conversation(self) -> ConversationRef {
        match (self.group, self.user) {
            (Some(group), _) => ConversationRef::Group(group),
            (None, Some(user)) => ConversationRef::User(user),
            // The required ArgGroup makes clap refuse a command line with neither.
            (None, None) => unreachable!("clap requires --group or --user"),
        }
    }
}

/// A conversation that may be named: at most one of `--group` and `--user`.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct MaybeTarget {
    /// Only this group.
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// Only the direct conversation with this user.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

impl MaybeTarget {
    /// The conversation named, if any.
    #[must_use]
    pub fn conversation(self) -> Option<ConversationRef> {
        match (self.group, self.user) {
            (Some(group), _) => Some(ConversationRef::Group(group)),
            (None, Some(user)) => Some(ConversationRef::User(user)),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group (you are its admin and a member).
    Create {
        /// The group's name.
        name: String,
        /// The other members, comma separated.
        #[arg(long, value_name = "a,b,c")]
        members: Vec<String>,
    },
    /// Add or remove members.
    Amend(Amend),
    /// List your groups.
    List,
    /// List a group's members.
    Members {
        /// The group's name.
        name: String,
    },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true).args(["add", "remove"])))]
pub struct Amend {
    /// The group's name.
    pub name: String,
    /// Members to add, comma separated.
    #[arg(long, value_name = "a,b")]
    pub add: Vec<String>,
    /// Members to remove, comma separated.
    #[arg(long, value_name = "a,b")]
    pub remove: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show a user's safety number (yours without USER).
    Fingerprint {
        /// The user [default: you].
        user: Option<String>,
    },
    /// Mark a user's key verified after comparing its safety number with them.
    Verify {
        /// The user.
        user: String,
        /// Their safety number, as one argument or as its space-separated groups.
        #[arg(required = true, value_name = "FINGERPRINT")]
        fingerprint: Vec<String>,
    },
}

/// Usernames given the way the original GUI took them: comma separated, spaces around
/// names ignored, empty entries dropped. Several occurrences of the flag add up.
#[must_use]
pub fn parse_members<S: AsRef<str>>(values: &[S]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.as_ref().split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fastchatctl").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn members_are_comma_separated_like_the_gui() {
        assert_eq!(
            parse_members(&[" alice, bob ,,carol,", "dave"]),
            ["alice", "bob", "carol", "dave"]
        );
        assert!(parse_members(&[" , ,"]).is_empty());
        assert!(parse_members::<&str>(&[]).is_empty());
    }

    #[test]
    fn send_joins_its_words() {
        let cli = parse(&["send", "--group", "team", "hello", "world"]).expect("parses");
        let Command::Send { to, text } = cli.command else {
            panic!("not send: {:?}", cli.command);
        };
        assert_eq!(text.join(" "), "hello world");
        assert_eq!(to.conversation(), ConversationRef::Group("team".into()));
    }

    #[test]
    fn a_lone_dash_is_text_not_a_flag() {
        let cli = parse(&["send", "--user", "bob", "-"]).expect("parses");
        let Command::Send { to, text } = cli.command else {
            panic!("not send: {:?}", cli.command);
        };
        assert_eq!(text, ["-"]);
        assert_eq!(to.conversation(), ConversationRef::User("bob".into()));
    }

    #[test]
    fn exactly_one_conversation_is_named() {
        let both = parse(&["send", "--group", "team", "--user", "bob", "hi"]);
        assert_eq!(both.expect_err("both").kind(), ErrorKind::ArgumentConflict);
        let neither = parse(&["history"]);
        assert_eq!(
            neither.expect_err("neither").kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert!(parse(&["send", "--group", "team"]).is_err(), "no text");
        let watch = parse(&["watch"]).expect("watch takes no conversation");
        let Command::Watch { to } = watch.command else {
            panic!("not watch");
        };
        assert_eq!(to.conversation(), None);
        assert!(parse(&["watch", "--group", "a", "--user", "b"]).is_err());
    }

    #[test]
    fn amend_needs_a_change() {
        let err = parse(&["group", "amend", "team"]).expect_err("no change");
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        let cli = parse(&["group", "amend", "team", "--remove", "carol"]).expect("parses");
        let Command::Group(GroupCommand::Amend(amend)) = cli.command else {
            panic!("not amend");
        };
        assert!(amend.add.is_empty());
        assert_eq!(parse_members(&amend.remove), ["carol"]);
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let cli = parse(&[
            "--profile",
            "work",
            "group",
            "list",
            "--json",
            "--server",
            "a:1",
            "--server",
            "b:2",
        ])
        .expect("parses");
        assert_eq!(cli.global.profile, "work");
        assert!(cli.global.json);
        assert_eq!(cli.global.servers, ["a:1", "b:2"]);
        assert!(!cli.global.no_autostart);
        let cli = parse(&["--socket", "/tmp/x.sock", "status"]).expect("parses");
        assert_eq!(cli.global.socket_path(), PathBuf::from("/tmp/x.sock"));
    }

    #[test]
    fn bad_profiles_are_usage_errors() {
        let err = parse(&["--profile", "../etc", "status"]).expect_err("bad profile");
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        let cli = parse(&["--profile", "", "status"]).expect("empty is the default");
        assert!(fastchat_api::paths::valid_profile(&cli.global.profile));
    }

    #[test]
    fn fingerprints_may_come_in_groups() {
        let cli = parse(&["keys", "verify", "bob", "12345", "67890"]).expect("parses");
        let Command::Keys(KeysCommand::Verify { user, fingerprint }) = cli.command else {
            panic!("not verify");
        };
        assert_eq!(user, "bob");
        assert_eq!(fingerprint.join(" "), "12345 67890");
    }

    #[test]
    fn limits_are_positive() {
        assert!(parse(&["history", "--group", "t", "--limit", "0"]).is_err());
        let cli = parse(&["history", "--group", "t", "--limit", "5"]).expect("parses");
        let Command::History { limit, .. } = cli.command else {
            panic!("not history");
        };
        assert_eq!(limit, Some(5));
    }
}
