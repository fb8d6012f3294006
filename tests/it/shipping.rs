//! What ships stays consistent: `action.yml`, the release workflow, the Dockerfile, the
//! set-up scripts and the README agree with each other and with the code. Plain file
//! reads (and the scripts and binary they name); no network, no Docker.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn yaml(path: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The strings of a YAML sequence (empty when it is not one).
fn strings(v: &serde_yaml_ng::Value) -> Vec<&str> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect()
}

/// `key = "value"` of Cargo.toml's `[package]` table.
fn package_field(key: &str) -> String {
    let cargo = read("Cargo.toml");
    let package = cargo.split("\n[").next().unwrap();
    package
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("Cargo.toml [package] has no {key}"))
        .to_string()
}

/// `owner/name` of the repository, from Cargo.toml's `repository` URL.
fn repository() -> String {
    package_field("repository")
        .strip_prefix("https://github.com/")
        .expect("Cargo.toml repository is a https://github.com/OWNER/NAME URL")
        .to_string()
}

fn action_image() -> String {
    yaml("action.yml")["runs"]["image"]
        .as_str()
        .expect("action.yml runs.image")
        .to_string()
}

/// The image the release of Cargo.toml's version publishes, as action.yml must name it.
fn published_image() -> String {
    format!(
        "docker://ghcr.io/{}:v{}",
        repository().to_lowercase(),
        package_field("version")
    )
}

fn release_check(tag: &str, repo: &str) -> std::process::Output {
    Command::new(root().join("scripts/release-check"))
        .args([tag, repo])
        .output()
        .expect("running scripts/release-check")
}

fn numbers(text: &str) -> Vec<u32> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[test]
fn action_yml_runs_the_published_image_of_this_version() {
    let y = yaml("action.yml");
    assert_eq!(y["runs"]["using"].as_str(), Some("docker"));
    let image = action_image();
    // `image: Dockerfile` (or any path) makes every user's job compile pgrollout.
    assert!(
        image.starts_with("docker://"),
        "action.yml runs.image is {image:?}: it must be the published docker://… image, \
         so users' jobs pull it instead of building it"
    );
    assert_eq!(
        image,
        published_image(),
        "action.yml must name ghcr.io/<Cargo.toml repository>:v<Cargo.toml version>; \
         run scripts/release to set both"
    );
}

#[test]
fn the_release_workflow_publishes_the_image_action_yml_names() {
    let w = yaml(".github/workflows/release.yml");
    assert_eq!(strings(&w["on"]["push"]["tags"]), ["v*.*.*"]);
    let text = read(".github/workflows/release.yml");
    // The registry and name come from release-check, given the running repository.
    assert!(
        text.contains(r#"scripts/release-check "$GITHUB_REF_NAME" "$GITHUB_REPOSITORY""#),
        "release.yml must check the tag with scripts/release-check"
    );
    assert!(text.contains("IMAGE: ${{ needs.check.outputs.image }}"));
    assert!(text.contains("name=${{ env.IMAGE }},push-by-digest=true"));
    assert!(text.contains("--tag \"$IMAGE:$t\""));
    let platforms: BTreeSet<&str> = w["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .expect("release.yml jobs.build.strategy.matrix.include")
        .iter()
        .filter_map(|m| m["platform"].as_str())
        .collect();
    assert_eq!(platforms, BTreeSet::from(["linux/amd64", "linux/arm64"]));

    let version = package_field("version");
    let tag = format!("v{version}");
    let out = release_check(&tag, &repository());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "release-check refuses this repository's own release: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = published_image();
    let image = published
        .strip_prefix("docker://")
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .0;
    assert!(stdout.contains(&format!("image={image}\n")), "{stdout}");
    let [major, minor, ..] = numbers(&version)[..] else {
        panic!("version {version}")
    };
    if !version.contains('-') {
        assert!(
            stdout.contains(&format!("tags={tag} v{major}.{minor} v{major}\n")),
            "{stdout}"
        );
    }
}

#[test]
fn release_check_refuses_a_tag_or_repository_that_disagrees() {
    let version = package_field("version");
    for (tag, repo, why) in [
        (
            format!("v{version}.1"),
            repository(),
            "Cargo.toml's version",
        ),
        (
            format!("v{version}"),
            "someone/else".to_string(),
            "action.yml runs image",
        ),
        (version.clone(), repository(), "Cargo.toml's version"),
    ] {
        let out = release_check(&tag, &repo);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tag} {repo} accepted");
        assert!(stderr.contains(why), "{tag} {repo}: {stderr}");
    }
}

#[test]
fn the_image_runs_as_root_and_its_entrypoint_is_the_binary_action_yml_runs() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    // GitHub runs container actions as the image's user; they must run as root.
    for l in &instructions {
        if let Some(user) = l.strip_prefix("USER ") {
            let user = user.trim().split(':').next().unwrap();
            assert!(
                user == "root" || user == "0",
                "the Dockerfile sets USER {user}: container actions must run as root"
            );
        }
    }
    let bin = package_field("default-run");
    let path = format!("/usr/local/bin/{bin}");
    assert!(
        instructions.contains(&format!(r#"ENTRYPOINT ["{path}"]"#).as_str()),
        "the ENTRYPOINT must be {path}"
    );
    assert!(
        dockerfile.contains(&format!("install -m 0755 target/release/{bin} {path}")),
        "the build stage must install target/release/{bin} as {path}"
    );
    assert!(dockerfile.contains(&format!("COPY --from=build {path} {path}")));
    // Every base image is pinned by digest.
    for from in instructions.iter().filter(|l| l.starts_with("FROM ")) {
        let image = from.split_whitespace().nth(1).unwrap();
        assert!(
            image == "scratch" || image.contains("@sha256:"),
            "{from}: base images are pinned by digest"
        );
    }

    // action.yml's args put the entrypoint in action mode; the binary's action mode
    // turns INPUT_ARGS into its command line.
    let y = yaml("action.yml");
    let args = strings(&y["runs"]["args"]);
    assert_eq!(args, ["action"]);
    let out = Command::new(env!("CARGO_BIN_EXE_pgrollout"))
        .args(&args)
        .env("INPUT_ARGS", "--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{bin} {}", package_field("version"))
    );
}

#[test]
fn the_image_pg_dump_is_at_least_the_newest_supported_server_major() {
    let readme = read("README.md");
    let supported = readme
        .lines()
        .find_map(|l| l.strip_prefix("**Supported servers:**"))
        .expect(
            "README.md states the supported servers: `**Supported servers:** PostgreSQL A to B.`",
        );
    let newest = *numbers(supported).iter().max().expect("a major version");
    let dockerfile = read("Dockerfile");
    let major: u32 = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG PG_MAJOR="))
        .expect("Dockerfile: ARG PG_MAJOR=")
        .trim()
        .parse()
        .unwrap();
    assert!(
        dockerfile.contains(r#""postgresql-client-${PG_MAJOR}""#),
        "the runtime stage installs postgresql-client-${{PG_MAJOR}}"
    );
    assert!(
        dockerfile.contains("https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main"),
        "the client comes from the PostgreSQL project's repository (Debian's stops at 15)"
    );
    // pg_dump refuses to dump a server whose major version is newer than its own.
    assert!(
        major >= newest,
        "the image's pg_dump is {major}, but the README supports PostgreSQL {newest}"
    );
}

/// Input names the code reads: `input("name")` in action mode and `"INPUT_NAME"` literals.
fn inputs_read_by_the_code() -> BTreeSet<String> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, files);
            } else if p.extension().is_some_and(|e| e == "rs") {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (marker, is_env) in [("input(\"", false), ("\"INPUT_", true)] {
            for (at, _) in text.match_indices(marker) {
                // `input("…")` itself, not `dispatch_input("…")` (the event payload).
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let piece = &text[at + marker.len()..];
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if !name.is_empty() && piece[name.len()..].starts_with('"') {
                    // The runner upper-cases input names and keeps hyphens.
                    names.insert(if is_env { name.to_lowercase() } else { name });
                }
            }
        }
    }
    names
}

#[test]
fn action_yml_inputs_are_the_inputs_the_code_reads() {
    let y = yaml("action.yml");
    let declared: BTreeSet<String> = y["inputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(declared, inputs_read_by_the_code());
}

#[test]
fn the_readme_commands_are_the_scripts_and_ci_runs_the_same_tests() {
    let readme = read("README.md");
    let first_block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let commands: Vec<&str> = first_block
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .collect();
    assert_eq!(commands, ["./scripts/sample", "./scripts/test"]);

    let sample = read("scripts/sample");
    let run = "cargo run --release -- --ephemeral pipeline run --env production --confirm MIGRATE-PRODUCTION --review-delay 3s";
    assert!(
        sample.contains(&format!("exec {run}")),
        "scripts/sample runs {run}"
    );
    assert!(
        readme.contains(run),
        "the README keeps `{run}` for those with the packages"
    );
    for package in ["libclang-dev", "postgresql"] {
        assert!(
            sample.contains(&format!(" {package}")),
            "scripts/sample installs {package}"
        );
    }
    let test = read("scripts/test");
    assert!(test.contains("exec cargo test --locked"));
    assert!(
        read(".ci/run").contains("scripts/test"),
        ".ci/run runs the README's test command"
    );
}

#[test]
fn ephemeral_without_server_programs_says_what_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pgrollout"))
        .args(["--ephemeral", "status"])
        .env_clear()
        .env("PATH", empty.path())
        .env("PGROLLOUT_PG_BIN", empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let advice = pgrollout::ephemeral::install_advice(
        std::fs::read_to_string("/etc/os-release").ok().as_deref(),
        cfg!(target_os = "macos"),
    );
    assert!(stderr.contains(&advice), "{stderr}");
    assert!(stderr.contains("docker run -d -p 5432:5432"), "{stderr}");
    assert!(
        stderr.contains("does not contain both initdb and pg_ctl"),
        "{stderr}"
    );
}
