//! What commands read besides their arguments: passwords and message text from stdin or
//! the terminal. Everything here blocks; callers run it off the async runtime's thread.

use std::io::{self, BufRead, IsTerminal, Read};

use anyhow::{Context, bail};

/// The password for `signup` (`confirm`: asked twice on a terminal) or `login`.
///
/// # Errors
/// If it cannot be read, stdin is empty with `--password-stdin`, or the two entries differ.
pub fn password(from_stdin: bool, confirm: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        let read = io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        if read == 0 {
            bail!("--password-stdin: stdin is empty");
        }
        return Ok(strip_newline(line));
    }
    // rpassword prompts and reads on the terminal itself (/dev/tty), whatever stdin is.
    let no_terminal = "cannot read the password from the terminal (use --password-stdin)";
    let first = rpassword::prompt_password("Password: ").context(no_terminal)?;
    if confirm && io::stdin().is_terminal() {
        let again = rpassword::prompt_password("Repeat the password: ").context(no_terminal)?;
        if again != first {
            bail!("the passwords do not match");
        }
    }
    Ok(first)
}

/// All of stdin, less one trailing newline (the one `echo` adds).
///
/// # Errors
/// If stdin cannot be read or is not UTF-8.
pub fn stdin_text() -> anyhow::Result<String> {
    let mut text = String::new();
    io::stdin()
        .lock()
        .read_to_string(&mut text)
        .context("cannot read the text from stdin")?;
    Ok(strip_newline(text))
}

/// `text` without one trailing `\n` or `\r\n`.
fn strip_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_goes() {
        assert_eq!(strip_newline("secret\n".into()), "secret");
        assert_eq!(strip_newline("secret\r\n".into()), "secret");
        assert_eq!(strip_newline("two\nlines\n\n".into()), "two\nlines\n");
        assert_eq!(strip_newline("none".into()), "none");
        assert_eq!(strip_newline(String::new()), "");
    }
}
