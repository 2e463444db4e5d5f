//! The one message catalogue: every text the pages show, in English and Simplified
//! Chinese, by key. A key missing from the table shows as itself (and a unit test checks
//! that every key has both texts).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" | "en-US" => Some(Lang::En),
            "zh-CN" | "zh" | "zh-cn" => Some(Lang::Zh),
            _ => None,
        }
    }
}

/// `(key, English, 简体中文)`.
const MESSAGES: &[(&str, &str, &str)] = &[
    ("skip", "Skip to content", "跳到正文"),
    ("nav.main", "Main", "主导航"),
    ("nav.projects", "Projects", "项目"),
    ("nav.search", "Search", "搜索"),
    ("nav.users", "Users", "用户"),
    ("nav.audit", "Audit log", "审计日志"),
    ("nav.config", "Configuration", "配置管理"),
    ("nav.gc", "Garbage collection", "垃圾清理"),
    ("nav.jobs", "Jobs", "任务"),
    ("nav.prefs", "Preferences", "偏好设置"),
    ("nav.project", "Project", "项目导航"),
    ("signin", "Sign in", "登录"),
    ("signout", "Sign out", "退出"),
    ("signed_in_as", "Signed in as", "当前用户"),
    ("username", "Username", "用户名"),
    ("password", "Password", "密码"),
    ("signin.failed", "Invalid user name or password.", "用户名或密码错误。"),
    ("signed_out", "You are signed out.", "您已退出。"),
    ("csrf", "The form expired. Please try again.", "表单已过期，请重试。"),
    ("prefs.title", "Preferences", "偏好设置"),
    ("prefs.lang", "Language", "语言"),
    ("prefs.theme", "Theme", "主题"),
    ("prefs.client", "Pull command client", "拉取命令客户端"),
    ("prefs.saved", "Preferences saved.", "偏好设置已保存。"),
    ("theme.auto", "As the system", "跟随系统"),
    ("theme.light", "Light", "浅色"),
    ("theme.dark", "Dark", "深色"),
    ("save", "Save", "保存"),
    ("saved", "Saved.", "已保存。"),
    ("create", "Create", "创建"),
    ("delete", "Delete", "删除"),
    ("deleted", "Deleted.", "已删除。"),
    ("cancel", "Cancel", "取消"),
    ("filter", "Filter", "过滤"),
    ("apply", "Apply", "应用"),
    ("copy", "Copy", "复制"),
    ("copied", "Copied", "已复制"),
    ("next", "Next page", "下一页"),
    ("prev", "Previous page", "上一页"),
    ("first", "First page", "第一页"),
    ("pagination", "Pages", "分页"),
    ("none", "Nothing here yet.", "暂无数据。"),
    ("confirm.title", "Are you sure?", "确认操作"),
    ("confirm.delete", "This cannot be undone. Delete", "此操作无法撤销。确认删除"),
    ("projects.title", "Projects", "项目"),
    ("projects.new", "New project", "新建项目"),
    ("projects.name", "Project name", "项目名称"),
    ("projects.public", "Public (anyone may pull)", "公开（任何人可拉取）"),
    ("projects.created", "Project created.", "项目已创建。"),
    ("projects.filter", "Project name contains", "项目名称包含"),
    ("col.name", "Name", "名称"),
    ("col.access", "Access level", "访问级别"),
    ("col.role", "Role", "角色"),
    ("col.repos", "Repositories", "镜像仓库数"),
    ("col.created", "Created", "创建时间"),
    ("col.updated", "Last modified", "最后修改"),
    ("col.artifacts", "Artifacts", "制品数"),
    ("col.pulls", "Pulls", "下载数"),
    ("col.tag", "Tag", "标签"),
    ("col.digest", "Digest", "摘要"),
    ("col.type", "Media type", "媒体类型"),
    ("col.size", "Manifest size", "清单大小"),
    ("col.pushed", "Pushed", "推送时间"),
    ("col.pulled", "Last pulled", "最近拉取"),
    ("col.pull", "Pull command", "拉取命令"),
    ("col.actions", "Actions", "操作"),
    ("col.description", "Description", "描述"),
    ("col.enabled", "Status", "状态"),
    ("col.expires", "Expires", "过期时间"),
    ("col.email", "Email", "邮箱"),
    ("col.admin", "Administrator", "管理员"),
    ("col.time", "Time", "时间"),
    ("col.user", "User", "用户"),
    ("col.operation", "Operation", "操作"),
    ("col.resource", "Resource", "资源"),
    ("col.resource_type", "Resource type", "资源类型"),
    ("col.status", "Status", "状态"),
    ("col.trigger", "Trigger", "触发方式"),
    ("col.color", "Colour", "颜色"),
    ("col.targets", "Endpoint", "地址"),
    ("col.events", "Event types", "事件类型"),
    ("col.repo_pattern", "Repositories", "仓库"),
    ("col.tag_pattern", "Tags", "标签"),
    ("col.project", "Project", "项目"),
    ("public", "Public", "公开"),
    ("private", "Private", "私有"),
    ("yes", "Yes", "是"),
    ("no", "No", "否"),
    ("enabled", "Enabled", "启用"),
    ("disabled", "Disabled", "禁用"),
    ("never", "Never", "从不"),
    ("tab.repos", "Repositories", "镜像仓库"),
    ("tab.members", "Members", "成员"),
    ("tab.robots", "Robot accounts", "机器人账户"),
    ("tab.labels", "Labels", "标签管理"),
    ("tab.settings", "Settings", "配置管理"),
    ("tab.webhooks", "Webhooks", "Webhooks"),
    ("tab.immutability", "Immutable tags", "不可变标签"),
    ("tab.audit", "Logs", "日志"),
    ("repos.title", "Repositories", "镜像仓库"),
    ("repos.filter", "Repository name contains", "仓库名称包含"),
    ("tags.title", "Tags", "标签"),
    ("artifacts.title", "Artifacts", "制品"),
    ("repo.views", "Repository views", "仓库视图"),
    ("more", "more", "更多"),
    ("tags.filter", "Tag name starts with", "标签名称前缀"),
    ("tags.delete", "Delete tag", "删除标签"),
    ("tags.deleted", "Tag deleted.", "标签已删除。"),
    ("tags.pull_by_digest", "Pull by digest", "按摘要拉取"),
    ("artifact.title", "Artifact", "制品"),
    ("artifact.tags", "Tags of this artifact", "该制品的标签"),
    ("artifact.refs", "Platforms (index children)", "平台（索引子清单）"),
    ("artifact.annotations", "Annotations", "注解"),
    ("artifact.size", "Size (compressed, as stored)", "大小（压缩后，按存储计）"),
    ("members.add", "Add member", "添加成员"),
    ("members.added", "Member added.", "成员已添加。"),
    ("members.remove", "Remove", "移除"),
    ("members.change_role", "Change role", "修改角色"),
    ("role.1", "Project admin", "项目管理员"),
    ("role.2", "Developer", "开发者"),
    ("role.3", "Guest", "访客"),
    ("role.4", "Maintainer", "维护人员"),
    ("role.5", "Limited guest", "受限访客"),
    ("robots.new", "New robot account", "新建机器人账户"),
    (
        "robots.created",
        "Robot account created. Copy its secret now: it is shown only once.",
        "机器人账户已创建。请立即复制密钥：它只显示这一次。",
    ),
    ("robots.secret", "Secret", "密钥"),
    ("robots.duration", "Expires after (days, -1 never)", "有效期（天，-1 表示永不过期）"),
    ("robots.perm", "Permissions", "权限"),
    ("robots.perm.pull", "Pull", "拉取"),
    ("robots.perm.push", "Push and pull", "推送和拉取"),
    ("labels.new", "New label", "新建标签"),
    ("settings.title", "Project settings", "项目配置"),
    ("settings.public", "Public: anyone may pull from this project", "公开：任何人都可以从此项目拉取"),
    ("settings.prevent_vul", "Prevent vulnerable images from running", "阻止潜在漏洞镜像"),
    ("settings.auto_scan", "Scan images on push", "自动扫描镜像"),
    ("webhooks.new", "New webhook", "新建 Webhook"),
    ("webhooks.address", "Endpoint URL", "地址"),
    ("immutability.new", "New immutable-tag rule", "新建不可变标签规则"),
    ("immutability.repos", "Repositories matching (doublestar, e.g. **)", "匹配的仓库（如 **）"),
    ("immutability.tags", "Tags matching (e.g. v*)", "匹配的标签（如 v*）"),
    ("users.title", "Users", "用户管理"),
    ("users.new", "New user", "新建用户"),
    ("users.realname", "Full name", "全名"),
    ("users.created", "User created.", "用户已创建。"),
    ("audit.title", "Audit log", "审计日志"),
    ("audit.filter_user", "User name", "用户名"),
    ("audit.filter_op", "Operation", "操作"),
    ("config.title", "Configuration", "配置管理"),
    ("config.creation", "Who may create projects", "项目创建权限"),
    ("config.everyone", "Everyone", "所有人"),
    ("config.adminonly", "System administrators only", "仅系统管理员"),
    ("config.read_only", "Read-only mode (refuse pushes and deletes)", "只读模式（拒绝推送和删除）"),
    ("config.session_timeout", "Session timeout (minutes)", "会话超时（分钟）"),
    ("config.robot_prefix", "Robot name prefix", "机器人名称前缀"),
    ("gc.title", "Garbage collection", "垃圾清理"),
    ("gc.run", "Run garbage collection now", "立即清理垃圾"),
    ("gc.dry_run", "Dry run (report only)", "模拟运行（仅报告）"),
    ("gc.untagged", "Delete untagged artifacts", "删除未打标签的制品"),
    ("gc.started", "Garbage collection started.", "垃圾清理已开始。"),
    ("gc.history", "History", "历史记录"),
    ("gc.schedule", "Schedule", "定时"),
    ("jobs.title", "Jobs", "任务"),
    ("jobs.queues", "Queues by job type", "按任务类型的队列"),
    ("jobs.pending", "Pending", "排队中"),
    ("jobs.paused", "Paused", "已暂停"),
    ("jobs.schedules", "Schedules", "定时任务"),
    ("jobs.pools", "Worker pools", "工作池"),
    ("search.title", "Search", "搜索"),
    ("search.q", "Project, repository or tag", "项目、仓库或标签"),
    ("search.tags", "Tags", "标签"),
    ("search.hint", "Search for a tag with repository:tag, e.g. nginx:1.25", "按 仓库:标签 搜索标签，例如 nginx:1.25"),
    ("account.title", "Your account", "个人设置"),
    ("account.password", "Change password", "修改密码"),
    ("account.old", "Current password", "当前密码"),
    ("account.new", "New password", "新密码"),
    ("account.confirm", "New password again", "确认新密码"),
    ("account.mismatch", "The new passwords differ.", "两次输入的新密码不一致。"),
    ("account.changed", "Password changed. Please sign in again.", "密码已修改，请重新登录。"),
    ("error", "Error", "错误"),
    ("ok", "Done", "完成"),
    ("forbidden", "You may not see this page.", "您无权查看此页面。"),
];

/// The text of `key` in `lang`.
pub fn t(lang: Lang, key: &str) -> &'static str {
    match MESSAGES.iter().find(|(k, _, _)| *k == key) {
        Some((_, en, zh)) => match lang {
            Lang::En => en,
            Lang::Zh => zh,
        },
        None => {
            tracing::warn!(key, "web UI: message key missing from the catalogue");
            "?"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_complete_and_unique() {
        let mut keys = std::collections::HashSet::new();
        for (k, en, zh) in MESSAGES {
            assert!(keys.insert(*k), "duplicate key {k}");
            assert!(!en.is_empty() && !zh.is_empty(), "{k} needs both texts");
        }
    }

    /// Every key the page code asks for is in the catalogue.
    #[test]
    fn every_used_key_exists() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") || p.ends_with("i18n.rs") {
                continue;
            }
            let src = std::fs::read_to_string(&p).unwrap();
            for part in src.split(".t(\"").skip(1) {
                let key = &part[..part.find('"').unwrap()];
                assert!(MESSAGES.iter().any(|(k, _, _)| *k == key), "{}: key {key:?} missing", p.display());
            }
        }
    }
}
