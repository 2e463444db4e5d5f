//! Names Harbor validates: project names (goharbor/harbor `src/pkg/project/manager.go`), robot
//! account names (`src/server/v2.0/handler/robot.go`, `src/controller/robot/controller.go`) and
//! local user names (`src/server/v2.0/handler/user.go`, `common.IllegalCharsInUsername`).
//! Lengths are in bytes, as Go's `len`.

use std::fmt;

/// Longest project name.
pub const PROJECT_NAME_MAX_LEN: usize = 255;
/// Longest user name.
pub const USERNAME_MAX_LEN: usize = 255;
/// Characters a user name may not contain.
pub const ILLEGAL_USERNAME_CHARS: &str = ",\"~#$%";
/// Harbor's default `robot_name_prefix`.
pub const ROBOT_PREFIX: &str = "robot$";
/// Separates the project from the robot's own name in a project-level robot's name.
pub const ROBOT_PROJECT_SEPARATOR: char = '+';

/// The rule a name breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("project name must be 1 to 255 characters long, it has {len}")]
    ProjectNameLength { len: usize },
    #[error(
        "project name must consist of lower-case letters and digits, optionally separated by single '.', '_' or '-' \
         (^[a-z0-9]+(?:[._-][a-z0-9]+)*$)"
    )]
    ProjectNameFormat,
    #[error(
        "robot name must consist of lower-case letters and digits, optionally separated by single '.', '_' or '-' \
         (^[a-z0-9]+(?:[._-][a-z0-9]+)*$)"
    )]
    RobotNameFormat,
    #[error("robot account name must start with {prefix:?}")]
    RobotPrefix { prefix: String },
    #[error("robot account name {full:?} has an empty project or robot name around '+'")]
    RobotNameEmptyPart { full: String },
    #[error("username must not be empty")]
    UsernameEmpty,
    #[error("username must be at most 255 characters long, it has {len}")]
    UsernameTooLong { len: usize },
    #[error("username must not contain {ch:?} (none of , \" ~ # $ % are allowed)")]
    UsernameIllegalChar { ch: char },
}

/// Whether `s` matches `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`: lower-case alphanumeric runs joined by
/// single `.`, `_` or `-`, starting and ending with an alphanumeric.
pub fn is_restricted_name(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    alnum(first)
        && alnum(last)
        && bytes.iter().all(|&b| alnum(b) || sep(b))
        && bytes.windows(2).all(|w| !(sep(w[0]) && sep(w[1])))
}

/// Harbor's project name rules: 1 to 255 bytes, then [`is_restricted_name`].
pub fn validate_project_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > PROJECT_NAME_MAX_LEN {
        return Err(NameError::ProjectNameLength { len: name.len() });
    }
    if !is_restricted_name(name) {
        return Err(NameError::ProjectNameFormat);
    }
    Ok(())
}

/// Harbor's rule for the name given when creating a robot (without prefix or project): it
/// must match [`is_restricted_name`], which in particular excludes `+` and `$`.
pub fn validate_robot_name(name: &str) -> Result<(), NameError> {
    if !is_restricted_name(name) {
        return Err(NameError::RobotNameFormat);
    }
    Ok(())
}

/// Harbor's user name rules (on creation): 1 to 255 bytes, none of `,"~#$%`.
pub fn validate_username(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::UsernameEmpty);
    }
    if name.len() > USERNAME_MAX_LEN {
        return Err(NameError::UsernameTooLong { len: name.len() });
    }
    if let Some(ch) = name.chars().find(|c| ILLEGAL_USERNAME_CHARS.contains(*c)) {
        return Err(NameError::UsernameIllegalChar { ch });
    }
    Ok(())
}

/// A robot v2 account name. Its full name, used for Basic auth and as the token `sub`, is
/// `robot$<name>` for a system-level robot and `robot$<project>+<name>` for a project-level
/// one; the `robot.name` column holds it without the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RobotName {
    /// The project of a project-level robot.
    pub project: Option<String>,
    /// The robot's own name.
    pub name: String,
}

impl RobotName {
    pub fn system(name: impl Into<String>) -> Self {
        RobotName { project: None, name: name.into() }
    }

    pub fn in_project(project: impl Into<String>, name: impl Into<String>) -> Self {
        RobotName { project: Some(project.into()), name: name.into() }
    }

    /// Parses a full name with the default prefix `robot$`.
    pub fn parse(full: &str) -> Result<Self, NameError> {
        Self::parse_with_prefix(full, ROBOT_PREFIX)
    }

    /// Parses a full name with a configured `robot_name_prefix`.
    pub fn parse_with_prefix(full: &str, prefix: &str) -> Result<Self, NameError> {
        let stored = full.strip_prefix(prefix).ok_or_else(|| NameError::RobotPrefix { prefix: prefix.to_owned() })?;
        Self::from_stored(stored).map_err(|_| NameError::RobotNameEmptyPart { full: full.to_owned() })
    }

    /// Parses the `robot.name` column: `<name>` or `<project>+<name>`, split at the first `+`
    /// (neither part may contain one). Both parts must be non-empty; their format is not
    /// checked here (see [`Self::validate`]), so that any stored robot can still be looked up.
    pub fn from_stored(stored: &str) -> Result<Self, NameError> {
        let robot = match stored.split_once(ROBOT_PROJECT_SEPARATOR) {
            Some((project, name)) => Self::in_project(project, name),
            None => Self::system(stored),
        };
        if robot.name.is_empty() || robot.project.as_deref().is_some_and(str::is_empty) {
            return Err(NameError::RobotNameEmptyPart { full: stored.to_owned() });
        }
        Ok(robot)
    }

    /// The `robot.name` column value: `<name>` or `<project>+<name>`.
    pub fn stored_name(&self) -> String {
        match &self.project {
            Some(project) => format!("{project}{ROBOT_PROJECT_SEPARATOR}{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The full name with the default prefix.
    pub fn full_name(&self) -> String {
        self.full_name_with_prefix(ROBOT_PREFIX)
    }

    pub fn full_name_with_prefix(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.stored_name())
    }

    /// The creation-time rules: the robot's name matches the restricted pattern, and the
    /// project, if any, is a valid project name.
    pub fn validate(&self) -> Result<(), NameError> {
        validate_robot_name(&self.name)?;
        if let Some(project) = &self.project {
            validate_project_name(project)?;
        }
        Ok(())
    }
}

impl fmt::Display for RobotName {
    /// The full name with the default prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ROBOT_PREFIX}{}", self.stored_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn project_names() {
        for ok in ["a", "0", "library", "my-proj", "my_proj", "my.proj", "a-b_c.d", "a1b2", "1-2"] {
            assert_eq!(validate_project_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_project_name(""), Err(NameError::ProjectNameLength { len: 0 }));
        let long = "a".repeat(256);
        assert_eq!(validate_project_name(&long), Err(NameError::ProjectNameLength { len: 256 }));
        assert_eq!(validate_project_name(&long[..255]), Ok(()));
        for bad in ["Library", "-a", "a-", ".a", "a.", "a--b", "a._b", "a b", "a/b", "a+b", "ä", "_", "a$"] {
            assert_eq!(validate_project_name(bad), Err(NameError::ProjectNameFormat), "{bad}");
        }
        assert!(NameError::ProjectNameFormat.to_string().contains("lower-case"));
        assert!(NameError::ProjectNameLength { len: 0 }.to_string().contains("1 to 255"));
    }

    #[test]
    fn robot_short_names() {
        assert_eq!(validate_robot_name("ci-bot"), Ok(()));
        assert_eq!(validate_robot_name("ci+bot"), Err(NameError::RobotNameFormat));
        assert_eq!(validate_robot_name("CI"), Err(NameError::RobotNameFormat));
        assert_eq!(validate_robot_name(""), Err(NameError::RobotNameFormat));
    }

    #[test]
    fn robot_full_names() {
        let sys = RobotName::parse("robot$scanner").unwrap();
        assert_eq!(sys, RobotName::system("scanner"));
        assert_eq!(sys.stored_name(), "scanner");
        assert_eq!(sys.full_name(), "robot$scanner");
        assert_eq!(sys.to_string(), "robot$scanner");

        let proj = RobotName::parse("robot$library+ci").unwrap();
        assert_eq!(proj, RobotName::in_project("library", "ci"));
        assert_eq!(proj.stored_name(), "library+ci");
        assert_eq!(proj.full_name(), "robot$library+ci");
        assert_eq!(proj.full_name_with_prefix("bot_"), "bot_library+ci");
        assert_eq!(RobotName::parse_with_prefix("bot_library+ci", "bot_"), Ok(proj.clone()));
        assert_eq!(RobotName::from_stored("library+ci"), Ok(proj.clone()));
        assert_eq!(proj.validate(), Ok(()));

        assert_eq!(RobotName::parse("admin"), Err(NameError::RobotPrefix { prefix: "robot$".into() }));
        assert_eq!(
            RobotName::parse_with_prefix("robot$x", "bot_"),
            Err(NameError::RobotPrefix { prefix: "bot_".into() })
        );
        for bad in ["robot$", "robot$+ci", "robot$library+"] {
            assert_eq!(RobotName::parse(bad), Err(NameError::RobotNameEmptyPart { full: bad.into() }), "{bad}");
        }
        // Split at the first '+'; the rest fails validation but still parses for lookup.
        let odd = RobotName::parse("robot$a+b+c").unwrap();
        assert_eq!(odd, RobotName::in_project("a", "b+c"));
        assert_eq!(odd.validate(), Err(NameError::RobotNameFormat));
        assert_eq!(RobotName::in_project("Lib", "ci").validate(), Err(NameError::ProjectNameFormat));
    }

    #[test]
    fn usernames() {
        for ok in ["admin", "Alice Smith", "user@example.com", "a", "ü-ser", "robot_x"] {
            assert_eq!(validate_username(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_username(""), Err(NameError::UsernameEmpty));
        assert_eq!(validate_username(&"a".repeat(256)), Err(NameError::UsernameTooLong { len: 256 }));
        assert_eq!(validate_username(&"a".repeat(255)), Ok(()));
        for ch in [',', '"', '~', '#', '$', '%'] {
            let name = format!("ab{ch}cd");
            assert_eq!(validate_username(&name), Err(NameError::UsernameIllegalChar { ch }), "{name}");
        }
        assert!(NameError::UsernameIllegalChar { ch: '$' }.to_string().contains("'$'"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn restricted_pattern_accepts_its_language(s in "[a-z0-9]{1,5}([._-][a-z0-9]{1,5}){0,5}") {
            prop_assert!(is_restricted_name(&s));
        }

        #[test]
        fn restricted_pattern_matches_reference(s in "[a-z0-9._+A-]{0,12}") {
            // Reference: split into alphanumeric runs by single separators.
            let reference = {
                let parts: Vec<&str> = s.split(['.', '_', '-']).collect();
                parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            };
            prop_assert_eq!(is_restricted_name(&s), reference);
        }

        #[test]
        fn robot_names_round_trip(project in proptest::option::of("[a-z0-9]{1,8}"), name in "[a-z0-9]{1,8}") {
            let robot = RobotName { project, name };
            prop_assert_eq!(RobotName::parse(&robot.full_name()), Ok(robot.clone()));
            prop_assert_eq!(RobotName::from_stored(&robot.stored_name()), Ok(robot.clone()));
            prop_assert_eq!(robot.validate(), Ok(()));
        }
    }
}
