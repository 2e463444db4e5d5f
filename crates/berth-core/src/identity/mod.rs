//! Harbor's identity model, as pure domain code: how local passwords and robot secrets are
//! hashed and checked ([`password`]), which project role may do what ([`rbac`]), and which
//! project, robot and user names are acceptable ([`names`]).
//!
//! Nothing here touches HTTP, SQL or JWTs: callers load the user or robot row, call into
//! these functions, and turn the results into responses or tokens themselves.

pub mod names;
pub mod password;
pub mod rbac;

pub use names::{NameError, ROBOT_PREFIX, RobotName};
pub use password::{LoginThrottle, PasswordVersion, PolicyError, VerifyCache};
pub use rbac::{Action, Permission, ProjectAccess, Resource, Role, TokenAction};
