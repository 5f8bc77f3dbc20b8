//! nginx's command line on configurations with the module: `nginx -T` prints
//! `*_by_lua_block` bodies exactly as written, even when a block spans several
//! refills of nginx's 4 KiB configuration buffer (the block reader copies what
//! it reads into the dump); the configurations shipped in nginx-conf/ pass
//! `nginx -t`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn nginx_binary() -> PathBuf {
    std::env::var_os("TEST_NGINX_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("NGX_LUA_SHDICT_NGINX_BINARY")))
}

fn module_paths() -> Vec<String> {
    if let Some(list) = std::env::var_os("TEST_NGINX_LOAD_MODULES") {
        return list
            .to_string_lossy()
            .split_whitespace()
            .map(str::to_string)
            .collect();
    }
    // The cdylib `cargo test` just built sits next to this executable.
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("target/<profile>/deps");
    vec![deps
        .join("libngx_lua_shdict.so")
        .to_string_lossy()
        .into_owned()]
}

/// Runs nginx with `flag` (`-t`, `-T`) on the configuration in `prefix`.
fn run_nginx(prefix: &Path, conf_path: &Path, flag: &str) -> std::process::Output {
    Command::new(nginx_binary())
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(conf_path)
        .arg("-e")
        .arg(prefix.join("logs/error.log"))
        .arg(flag)
        // nginx reads NGINX as a list of inherited listening sockets.
        .env_remove("NGINX")
        .output()
        .unwrap_or_else(|e| panic!("cannot run nginx {flag}: {e}"))
}

fn config_with_big_block() -> String {
    let mut conf = String::new();
    for module in module_paths() {
        conf.push_str(&format!("load_module {module};\n"));
    }
    conf.push_str("events {}\nhttp {\n    lua_shared_dict dump_test 64k;\n    server {\n");
    conf.push_str("        listen 127.0.0.1:1;\n        location = /big {\n");
    conf.push_str("            content_by_lua_block {\n");
    for i in 0..400 {
        // Braces, quotes and comment markers on every line, and a line per
        // ~45 bytes, so the block crosses the 4 KiB buffer several times.
        conf.push_str(&format!("                v{i} = \"}}{{;#$\" -- }} {{ '\n"));
    }
    conf.push_str("                ngx.say(v1)\n            }\n        }\n");
    conf.push_str("        location = /after { content_by_lua 'ngx.say(1)'; }\n");
    conf.push_str("    }\n}\n");
    conf
}

#[test]
fn dump_prints_big_lua_blocks_verbatim() {
    let prefix = std::env::temp_dir().join(format!("ngx-dump-test-{}", std::process::id()));
    std::fs::create_dir_all(prefix.join("conf")).unwrap();
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let conf = config_with_big_block();
    assert!(conf.len() > 3 * 4096, "the block must exceed the buffer");
    let conf_path = prefix.join("conf/nginx.conf");
    std::fs::write(&conf_path, &conf).unwrap();

    let output = run_nginx(&prefix, &conf_path, "-T");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nginx -T failed:\n{stderr}");
    let header = format!("# configuration file {}:\n", conf_path.display());
    let dumped = stdout
        .split_once(&header)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no dump of {} in:\n{stdout}", conf_path.display()));
    assert!(
        dumped.starts_with(&conf),
        "the dump differs from the file.\n--- file ---\n{conf}\n--- dump ---\n{dumped}"
    );
    std::fs::remove_dir_all(&prefix).ok();
}

/// Writes `conf` into a fresh prefix and runs `nginx -t` on it.
fn nginx_test_config(name: &str, conf: &str) -> std::process::Output {
    let prefix = std::env::temp_dir().join(format!("ngx-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(prefix.join("conf")).unwrap();
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let conf_path = prefix.join("conf/nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let output = run_nginx(&prefix, &conf_path, "-t");
    std::fs::remove_dir_all(&prefix).ok();
    output
}

fn shipped_config(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("nginx-conf")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let loads: String = module_paths()
        .iter()
        .map(|m| format!("load_module {m};\n"))
        .collect();
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("load_module ") {
                loads.clone()
            } else {
                format!("{line}\n")
            }
        })
        .collect::<String>()
        .replace("@PORT@", "1")
        .replace("@REDIS_PORT@", "6379")
        .replace(
            "@LUA@",
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("nginx-conf/lua")
                .display()
                .to_string(),
        )
}

#[test]
fn shipped_configs_pass_nginx_t() {
    for file in ["demo.conf", "examples.conf"] {
        let output = nginx_test_config(file.trim_end_matches(".conf"), &shipped_config(file));
        assert!(
            output.status.success(),
            "nginx -t rejects nginx-conf/{file}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn nginx_t_leaves_a_damaged_snapshot_where_it_is() {
    let prefix = std::env::temp_dir().join(format!("ngx-persist-t-{}", std::process::id()));
    std::fs::create_dir_all(prefix.join("conf")).unwrap();
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let snapshot = prefix.join("d.snap");
    std::fs::write(&snapshot, b"not a snapshot").unwrap();
    let mut conf = String::new();
    for module in module_paths() {
        conf.push_str(&format!("load_module {module};\n"));
    }
    conf.push_str(&format!(
        "events {{}}\nhttp {{\n    lua_shared_dict d 64k;\n    lua_shared_dict_persist d {};\n}}\n",
        snapshot.display()
    ));
    let conf_path = prefix.join("conf/nginx.conf");
    std::fs::write(&conf_path, &conf).unwrap();

    let output = run_nginx(&prefix, &conf_path, "-t");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nginx -t failed:\n{stderr}");
    // Only a start loads (and moves a damaged file aside).
    assert_eq!(std::fs::read(&snapshot).unwrap(), b"not a snapshot");
    assert!(!prefix.join("d.snap.corrupt").exists());
    std::fs::remove_dir_all(&prefix).ok();
}
