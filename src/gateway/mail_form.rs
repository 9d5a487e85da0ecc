//! The form fields every mail gateway (gwsmtp, gwimap, gwpop3) shares, labelled and
//! hinted in English and Russian once; each gateway adds its own around them.

use crate::script::{Field, FieldKind, SelectOption};

/// One choice of a select field.
pub fn option(value: &str, en: &str, ru: &str) -> SelectOption {
    SelectOption {
        value: value.into(),
        label_en: en.into(),
        label_ru: ru.into(),
    }
}

/// `security`: `starttls` (the default), `tls` or `none`, labelled by `options`.
pub fn security(options: Vec<SelectOption>) -> Field {
    Field {
        kind: FieldKind::Select,
        default: Some("starttls".into()),
        options,
        ..Field::text(
            "security",
            ("Encryption", "Шифрование"),
            (
                "The server's certificate is always checked",
                "Сертификат сервера проверяется всегда",
            ),
        )
    }
}

/// `password`, a password field.
pub fn password(required: bool) -> Field {
    Field {
        kind: FieldKind::Password,
        required,
        ..Field::text(
            "password",
            ("Password", "Пароль"),
            (
                "For Gmail and Yandex: an app password",
                "Для Gmail и Яндекса — пароль приложения",
            ),
        )
    }
}

/// `ca_file` and `timeout`, the last fields of each mail gateway's form.
pub fn ca_file_and_timeout() -> [Field; 2] {
    [
        Field::text(
            "ca_file",
            ("Extra CA certificates", "Дополнительные сертификаты ЦС"),
            (
                "Optional: a PEM file of CAs to trust besides the system's, \
                 for a mail server with a certificate of a private CA",
                "Необязательно: PEM-файл сертификатов ЦС, которым доверять кроме \
                 системных, для сервера с сертификатом частного ЦС",
            ),
        ),
        Field::text(
            "timeout",
            ("Timeout, s", "Тайм-аут, с"),
            (
                "Optional: seconds to wait for each answer of the server, up to 300; \
                 30 when empty",
                "Необязательно: сколько секунд ждать каждого ответа сервера, до 300; \
                 пусто — 30",
            ),
        ),
    ]
}
