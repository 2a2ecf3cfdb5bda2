//! SOPs: the shipped defaults and validation.

use super::super::*;

#[test]
fn the_defaults_are_valid_and_cover_their_kinds() {
    let sops = default_sops();
    assert!(validate_sops(&sops).is_ok());
    let ids: Vec<&str> = sops.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["integration-health", "credential-failure", "deadline-at-risk"]
    );
    for s in &sops {
        assert!(validate_sop(s).is_ok(), "{}", s.id);
        // Both sides own steps in every default SOP.
        assert!(s.steps.iter().any(|st| st.side == Side::Partner), "{}", s.id);
        assert!(s.steps.iter().any(|st| st.side == Side::Platform), "{}", s.id);
    }
    assert_eq!(sops[0].step(3).map(|s| s.side), Some(Side::Partner));
}

#[test]
fn sop_validation_returns_every_problem_with_its_path() {
    let mut sop = default_sops().remove(0);
    sop.title = "".into();
    sop.steps[1].number = 1; // duplicate
    sop.steps[2].number = 0;
    sop.steps[3].title = " ".into();
    sop.steps[4].number = 2; // after 4
    let e = validate_sop(&sop).unwrap_err();
    assert_eq!(
        e.to_string(),
        "title: an SOP needs a title\n\
         steps[1].number: step 1 is also steps[0]; numbers must be unique\n\
         steps[2].number: steps are numbered from 1\n\
         steps[3].title: a step needs a title\n\
         steps[4].number: step 2 comes after step 4; list steps in increasing order"
    );
    let empty = Sop {
        id: "x".into(),
        title: "x".into(),
        applies_to: vec![],
        steps: vec![],
    };
    assert_eq!(validate_sop(&empty).unwrap_err().paths(), ["steps"]);
    // Across SOPs: ids unique, a kind follows one SOP.
    let mut sops = default_sops();
    sops[2].id = "integration-health".into();
    sops[2].applies_to.push(SourceKind::Health);
    assert_eq!(
        validate_sops(&sops).unwrap_err().paths(),
        ["sops[2].id", "sops[2].applies_to[1]"]
    );
}

#[test]
fn sops_parse() {
    let sop: Sop = serde_json::from_value(serde_json::json!({
        "id": "custom", "title": "Custom", "applies_to": ["rollout-failure", "health"],
        "steps": [{"number": 1, "title": "Look", "side": "platform", "requires_note": true}]
    }))
    .unwrap();
    assert_eq!(sop.applies_to, [SourceKind::RolloutFailure, SourceKind::Health]);
    assert!(sop.steps[0].requires_note);
    assert!(validate_sop(&sop).is_ok());
}
