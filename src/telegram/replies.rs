//! What the bot answers, in the customer's language: the user's `language` when the
//! chat belongs to a user, else the language of their Telegram client; Russian or
//! English.

/// A language of the answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    /// `ru`, `ru-RU`, `ru_RU` are Russian; everything else English.
    pub fn of(code: Option<&str>) -> Self {
        match code {
            Some(c) if c.trim().to_ascii_lowercase().starts_with("ru") => Lang::Ru,
            _ => Lang::En,
        }
    }
}

/// Every answer the bot gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `/start` linked the chat to the user `name`.
    Linked { name: String },
    /// `/start` from a username no profile has.
    NotRegistered { username: String },
    /// `/start` from a username several profiles have.
    Ambiguous { username: String },
    /// `/start` from someone with no username.
    NoUsername,
    /// Anything from a chat that is not linked.
    Help,
    /// Something other than text from a linked chat.
    TextOnly,
    /// A text over the Bot API's 4,096 characters.
    TooLong,
    /// `#<id> text` added to the ticket.
    Replied { ticket: u64 },
    /// A new ticket was opened with the text.
    Opened,
    /// `#<id>` names a ticket of someone else, or none: a new ticket was opened.
    NotYourTicket { ticket: u64 },
    /// Support did not take the message, again and again: given up.
    NotPosted,
}

impl Reply {
    pub fn text(&self, lang: Lang) -> String {
        use Lang::*;
        match (self, lang) {
            (Reply::Linked { name }, En) => format!(
                "Done: notifications for {name} will come to this chat. \
                 Write here to contact support; start with #<ticket number> to answer a ticket."
            ),
            (Reply::Linked { name }, Ru) => format!(
                "Готово: уведомления для {name} будут приходить в этот чат. \
                 Напишите сюда, чтобы связаться с поддержкой; начните с #<номер тикета>, \
                 чтобы ответить в тикет."
            ),
            (Reply::NotRegistered { username }, En) => format!(
                "Not linked: no customer profile has the Telegram username @{username}. \
                 Enter it in the Telegram field of your profile and send /start again."
            ),
            (Reply::NotRegistered { username }, Ru) => format!(
                "Не привязано: ни в одном профиле клиента нет имени Telegram @{username}. \
                 Укажите его в поле Telegram своего профиля и снова отправьте /start."
            ),
            (Reply::Ambiguous { username }, En) => format!(
                "Not linked: several customer profiles have the Telegram username @{username}. \
                 Please contact support."
            ),
            (Reply::Ambiguous { username }, Ru) => format!(
                "Не привязано: имя Telegram @{username} указано в нескольких профилях. \
                 Обратитесь в поддержку."
            ),
            (Reply::NoUsername, En) => "Not linked: your Telegram account has no username. \
                 Choose one in Telegram's settings, enter it in your profile, and send /start again."
                .into(),
            (Reply::NoUsername, Ru) => "Не привязано: у вашего аккаунта Telegram нет имени \
                 пользователя. Задайте его в настройках Telegram, укажите в профиле и снова \
                 отправьте /start."
                .into(),
            (Reply::Help, En) => "This bot sends the notifications of your customer account. \
                 Enter your Telegram username in your profile, then send /start here."
                .into(),
            (Reply::Help, Ru) => "Этот бот присылает уведомления вашего аккаунта клиента. \
                 Укажите своё имя Telegram в профиле, затем отправьте сюда /start."
                .into(),
            (Reply::TextOnly, En) => "Only text messages reach support.".into(),
            (Reply::TextOnly, Ru) => "В поддержку передаются только текстовые сообщения.".into(),
            (Reply::TooLong, En) => "The message is too long: 4096 characters at most.".into(),
            (Reply::TooLong, Ru) => "Сообщение слишком длинное: не больше 4096 символов.".into(),
            (Reply::Replied { ticket }, En) => format!("Added to ticket #{ticket}."),
            (Reply::Replied { ticket }, Ru) => format!("Добавлено в тикет #{ticket}."),
            (Reply::Opened, En) => {
                "Sent to support as a new ticket; the answer will come here and by email.".into()
            }
            (Reply::Opened, Ru) => {
                "Отправлено в поддержку новым тикетом; ответ придёт сюда и на почту.".into()
            }
            (Reply::NotYourTicket { ticket }, En) => {
                format!("Ticket #{ticket} is not one of yours: the message went to support as a new ticket.")
            }
            (Reply::NotYourTicket { ticket }, Ru) => {
                format!("Тикет #{ticket} не ваш: сообщение отправлено в поддержку новым тикетом.")
            }
            (Reply::NotPosted, En) => "Support could not take the message. Please write again \
                 later, or by email."
                .into(),
            (Reply::NotPosted, Ru) => "Поддержка не смогла принять сообщение. Напишите, \
                 пожалуйста, позже или по почте."
                .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages() {
        assert_eq!(Lang::of(Some("ru")), Lang::Ru);
        assert_eq!(Lang::of(Some("ru-RU")), Lang::Ru);
        assert_eq!(Lang::of(Some("en")), Lang::En);
        assert_eq!(Lang::of(Some("de")), Lang::En);
        assert_eq!(Lang::of(None), Lang::En);
        assert!(Reply::Replied { ticket: 5 }.text(Lang::Ru).contains("#5"));
    }
}
