//! `TestDir`: deleted after a passing test, kept after a panic.

use tilewave_testkit::TestDir;

#[test]
fn deleted_when_the_test_passes() {
    let dir = TestDir::new("pass").unwrap();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("x.log"), "hello").unwrap();
    drop(dir);
    assert!(!path.exists());
}

#[test]
fn kept_with_its_logs_when_the_test_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let joined = std::thread::spawn(move || {
        let dir = TestDir::new("fail").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/child.log"), "boom").unwrap();
        tx.send(dir.path().to_path_buf()).unwrap();
        panic!("deliberate failure to test TestDir");
    })
    .join();
    assert!(joined.is_err(), "the thread should have panicked");
    let path = rx.recv().unwrap();
    assert!(
        path.join("sub/child.log").is_file(),
        "{} not kept",
        path.display()
    );
    std::fs::remove_dir_all(&path).unwrap();
}

#[test]
fn keep_keeps_it() {
    let mut dir = TestDir::new("keep").unwrap();
    let path = dir.keep();
    drop(dir);
    assert!(path.is_dir());
    std::fs::remove_dir_all(&path).unwrap();
}
