//! The flags and `SSEHUB_*` variables of one config section, laid over the file.
//!
//! A section struct derives `clap::Args` beside serde (see the module doc of `config.rs`), but
//! clap cannot build it from the command line alone: a setting not given there must keep the
//! file's value, not become clap's. So `serve` flattens each section as an [`Overrides`],
//! which adds the section's flags (as `augment_args_for_update` does: none required) and keeps
//! only the values the user gave. [`Overrides::apply`] then writes them into the section
//! loaded from the file, through the `update_from_arg_matches` clap derives for it: the one
//! merge for every setting.

use std::marker::PhantomData;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};

/// The values of section `T`'s flags given on the command line or as variables.
#[derive(Debug, Clone)]
pub(crate) struct Overrides<T> {
    /// The matches of `serve`, without the values nobody gave (boxed: `serve` holds one per
    /// section).
    given: Box<ArgMatches>,
    section: PhantomData<fn() -> T>,
}

impl<T: FromArgMatches> Overrides<T> {
    /// Sets every field of `section` whose flag or variable was given; leaves the others.
    ///
    /// # Errors
    ///
    /// Only if `T`'s derive disagrees with its own arguments (a bug): clap has parsed and
    /// checked every value already.
    pub(crate) fn apply(&self, section: &mut T) -> Result<(), clap::Error> {
        section.update_from_arg_matches(&self.given)
    }
}

/// The matches without the values nobody gave: clap's defaults (a `bool` flag's `false`
/// included), and an on/off flag's `false` from its variable, so that such a flag, as before
/// sections had flags, can only switch its setting on.
fn given(matches: &ArgMatches) -> Box<ArgMatches> {
    let mut given = Box::new(matches.clone());
    let ignored: Vec<String> = matches
        .ids()
        .map(|id| id.as_str())
        .filter(|&id| {
            let explicit = matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            let off = matches!(matches.try_get_one::<bool>(id), Ok(Some(false)));
            !explicit || off
        })
        .map(str::to_owned)
        .collect();
    for id in ignored {
        // The id comes from these matches, so clearing it cannot fail.
        let _ = given.try_clear_id(&id);
    }
    given
}

impl<T: Args> Args for Overrides<T> {
    fn augment_args(cmd: Command) -> Command {
        T::augment_args_for_update(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        T::augment_args_for_update(cmd)
    }
}

impl<T> FromArgMatches for Overrides<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Overrides {
            given: given(matches),
            section: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use crate::cli::{Cli, Command, ServeArgs};
    use crate::config::Config;

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["ssehub", "serve"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    /// Every flag of every section is one argument, unique in `serve`: clap checks ids,
    /// names and variables here rather than at a user's first run.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// A flag given replaces the file's value; the settings not given keep the file's, even
    /// where clap has a default of its own (an on/off flag is `false` when absent).
    #[test]
    fn flags_given_override_the_file_and_only_they() {
        let file = "[sse]\nheartbeat_secs = 5\nretry_ms = 6\n\
                    [auth]\nallow_anonymous_publish = true\n\
                    [cors]\norigins = [\"https://file.example\"]\n";
        let mut config: Config = toml::from_str(file).unwrap();
        let expected = {
            let mut c = config.clone();
            c.sse.retry_ms = 7;
            c.cors.origins = vec!["https://a.example".into(), "https://b.example".into()];
            c.storage.fsync = crate::config::Fsync::Interval;
            c
        };
        serve(&[
            "--retry-ms=7",
            "--cors-origin=https://a.example",
            "--cors-origin=https://b.example",
            "--fsync=interval",
        ])
        .override_config(&mut config)
        .unwrap();
        assert_eq!(config, expected);

        let mut config = Config::default();
        serve(&["--allow-anonymous-publish"])
            .override_config(&mut config)
            .unwrap();
        assert!(config.auth.allow_anonymous_publish);
        let mut unchanged = Config::default();
        serve(&[]).override_config(&mut unchanged).unwrap();
        assert_eq!(unchanged, Config::default(), "no flag, no change");
    }
}
