//! Outbound routes applied to the operator's commands before the core sees them: a dialled or
//! transfer number takes the first `[[route]]` whose pattern matches (or the one chosen with
//! `route <name>` for the next call), is rewritten by its strip and prefix, and a number no
//! route takes is refused before anything is sent.

use crate::route::Routes;
use crate::sip::Command;

/// Routes and the operator's choice for the next call.
pub struct Router {
    routes: Routes,
    /// The name of the account new calls go out through (the selected default).
    account: String,
    /// The names of the accounts that run.
    accounts: Vec<String>,
    /// `route <name>`: forced for the next routed command.
    next: Option<String>,
}

impl Router {
    /// A router for the account named `account`, the only one.
    pub fn new(routes: Routes, account: &str) -> Router {
        Router {
            routes,
            account: account.to_owned(),
            accounts: vec![account.to_owned()],
            next: None,
        }
    }

    /// With these accounts running (`account <name>` may select one of them).
    pub fn with_accounts(mut self, names: Vec<String>) -> Router {
        self.accounts = names;
        self
    }

    /// `route <name>`: the route for the next routed command; `Err` is a message for the
    /// operator.
    pub fn choose(&mut self, name: &str) -> Result<(), String> {
        if self.routes.get(name).is_none() {
            return Err(format!(
                "there is no route `{name}`; routes: {}",
                names_or_none(&self.routes)
            ));
        }
        self.next = Some(name.to_owned());
        Ok(())
    }

    /// Applies the routes to `command`: the command for the core (a dial, transfer or consult
    /// target rewritten), or a message for the operator.
    pub fn apply(&mut self, command: Command) -> Result<Command, String> {
        let target = match &command {
            Command::Dial(t) | Command::Transfer(t) | Command::Consult(t) => t.clone(),
            Command::Account(name) => {
                // A plain dial goes out through the selected account; the core says so.
                if self.accounts.contains(name) {
                    self.account.clone_from(name);
                }
                return Ok(command);
            }
            _ => return Ok(command),
        };
        let routed = self
            .routes
            .choose(&target, self.next.as_deref())
            .map_err(|e| e.to_string())?;
        self.next = None;
        let number = routed.number;
        if let Some(account) = routed
            .account
            .as_ref()
            .filter(|a| !self.accounts.contains(a))
        {
            return Err(format!(
                "route `{}` goes out through account `{account}`, which does not run here \
                 (`enabled = false`, or a transport other than `{}`'s): enable it, or choose \
                 another route",
                routed.route.unwrap_or_default(),
                self.accounts.first().map_or("", String::as_str)
            ));
        }
        if let Some(account) = routed.account.filter(|a| *a != self.account) {
            // A new call can go out through another account; a transfer is the far end's
            // call, made through our own.
            return match command {
                Command::Dial(_) => Ok(Command::DialVia {
                    account,
                    target: number,
                }),
                _ => Err(format!(
                    "route `{}` goes out through account `{account}`, but a transfer is placed \
                     through this call's account `{}`: dial the number instead, or choose \
                     another route",
                    routed.route.unwrap_or_default(),
                    self.account
                )),
            };
        }
        Ok(match command {
            Command::Dial(_) => Command::Dial(number),
            Command::Transfer(_) => Command::Transfer(number),
            Command::Consult(_) => Command::Consult(number),
            other => other,
        })
    }
}

fn names_or_none(routes: &Routes) -> String {
    let names = routes.names();
    if names.is_empty() {
        "none are configured".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn router(toml: &str) -> Router {
        let config = Config::parse(toml, Path::new("test.toml")).expect("valid config");
        Router::new(
            Routes::from_config(&config.routes).expect("routes"),
            "office",
        )
        .with_accounts(vec!["office".into(), "hq".into()])
    }

    const ROUTES: &str = r#"
[[account]]
name = "office"
user = "op"
domain = "pbx.test"

[[account]]
name = "hq"
user = "op"
domain = "hq.test"

[[route]]
name = "internal"
pattern = "_XXX"

[[route]]
name = "outside"
pattern = "_9X."
strip = 1
prefix = "0"

[[route]]
name = "abroad"
pattern = "_+X."
account = "hq"
"#;

    #[test]
    fn numbers_are_rewritten_by_the_first_matching_route() {
        let mut r = router(ROUTES);
        assert_eq!(
            r.apply(Command::Dial("9 555-1234".into())),
            Ok(Command::Dial("05551234".into()))
        );
        assert_eq!(
            r.apply(Command::Transfer("201".into())),
            Ok(Command::Transfer("201".into()))
        );
        assert_eq!(r.apply(Command::Hangup(None)), Ok(Command::Hangup(None)));
    }

    #[test]
    fn a_chosen_route_applies_to_the_next_call_only() {
        let mut r = router(ROUTES);
        assert_eq!(r.choose("outside"), Ok(()));
        assert_eq!(
            r.apply(Command::Dial("9201".into())),
            Ok(Command::Dial("0201".into()))
        );
        assert_eq!(
            r.apply(Command::Dial("201".into())),
            Ok(Command::Dial("201".into()))
        );
        let err = r.choose("nowhere").unwrap_err();
        assert_eq!(
            err,
            "there is no route `nowhere`; routes: internal, outside, abroad"
        );
    }

    #[test]
    fn a_route_through_an_account_that_does_not_run_is_refused_with_the_reason() {
        let config = Config::parse(ROUTES, Path::new("test.toml")).expect("valid config");
        let routes = Routes::from_config(&config.routes).expect("routes");
        let mut r = Router::new(routes, "office");
        let err = r.apply(Command::Dial("+3581234".into())).unwrap_err();
        assert!(
            err.contains("account `hq`, which does not run here"),
            "{err}"
        );
        assert!(err.contains("enabled = false"), "{err}");
        // The routes through the running account still work.
        assert_eq!(
            r.apply(Command::Dial("9201".into())),
            Ok(Command::Dial("0201".into()))
        );
    }

    #[test]
    fn no_match_is_refused_and_another_account_dials_through_it() {
        let mut r = router(ROUTES);
        let err = r.apply(Command::Dial("12".into())).unwrap_err();
        assert!(err.contains("12"), "{err}");
        assert_eq!(
            r.apply(Command::Dial("+3581234".into())),
            Ok(Command::DialVia {
                account: "hq".into(),
                target: "+3581234".into()
            })
        );
        let err = r.apply(Command::Transfer("+3581234".into())).unwrap_err();
        assert!(err.contains("account `hq`"), "{err}");
        // SIP addresses are never routed.
        assert_eq!(
            r.apply(Command::Dial("sip:bob@example.com".into())),
            Ok(Command::Dial("sip:bob@example.com".into()))
        );
    }

    #[test]
    fn without_routes_everything_passes() {
        let mut r = router("");
        assert_eq!(
            r.apply(Command::Dial("12".into())),
            Ok(Command::Dial("12".into()))
        );
    }
}
