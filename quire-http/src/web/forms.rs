//! Form pages (sign up, sign in, settings, editor): the fields with what was typed and the
//! errors next to each, rendered by `form.html`.

use askama::Template;
use quire_domain::FieldErrors;

use super::Layout;

/// One field of a form.
pub(crate) struct Field {
    pub name: &'static str,
    pub label: &'static str,
    /// The `<input type>` (`text`, `email`, `password`, `url`); ignored when multiline.
    pub kind: &'static str,
    pub value: String,
    pub autocomplete: Option<&'static str>,
    pub required: bool,
    pub multiline: bool,
    pub rows: u8,
    pub hint: Option<&'static str>,
    pub errors: Vec<String>,
}

impl Field {
    pub(crate) fn input(name: &'static str, label: &'static str, kind: &'static str) -> Self {
        Self {
            name,
            label,
            kind,
            value: String::new(),
            autocomplete: None,
            required: false,
            multiline: false,
            rows: 1,
            hint: None,
            errors: Vec::new(),
        }
    }

    pub(crate) fn text_area(name: &'static str, label: &'static str, rows: u8) -> Self {
        Self {
            multiline: true,
            rows,
            ..Self::input(name, label, "text")
        }
    }

    pub(crate) fn value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    pub(crate) fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub(crate) fn autocomplete(mut self, token: &'static str) -> Self {
        self.autocomplete = Some(token);
        self
    }

    pub(crate) fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }
}

#[derive(Template)]
#[template(path = "web/form.html")]
pub(crate) struct FormPage {
    pub layout: Layout,
    pub heading: String,
    /// Trusted HTML written here (links), never user input.
    pub intro: Option<&'static str>,
    pub form_error: Option<String>,
    pub action: String,
    pub fields: Vec<Field>,
    pub submit: &'static str,
    pub has_upload: bool,
    /// A second form below (deleting an article): trusted HTML made here.
    pub danger: Option<String>,
}

impl FormPage {
    /// Puts each of `errors` next to its field; errors of no field go above the form.
    pub(crate) fn with_errors(mut self, errors: &FieldErrors) -> Self {
        for (name, messages) in errors.iter() {
            match self.fields.iter_mut().find(|f| f.name == name) {
                Some(field) => field.errors.extend(messages.iter().cloned()),
                None => {
                    let text = format!("{name} {}", messages.join(", "));
                    self.form_error = Some(match self.form_error.take() {
                        Some(before) => format!("{before}; {text}"),
                        None => text,
                    });
                }
            }
        }
        self
    }
}
