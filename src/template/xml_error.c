/* libxml2 and libxslt report some errors through a printf-style callback declared
 * variadic (xmlGenericErrorFunc). A Rust function cannot be C-variadic on stable Rust,
 * so this shim is the handler they call: it formats the message with vsnprintf and
 * hands the text to a non-variadic Rust callback (set once, before the handler is
 * installed anywhere). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

typedef void (*mgrnotify_xml_message_sink)(const char *message);

static mgrnotify_xml_message_sink sink;

void mgrnotify_xml_set_message_sink(mgrnotify_xml_message_sink callback)
{
    sink = callback;
}

void mgrnotify_xml_generic_error(void *ctx, const char *format, ...)
{
    /* Longer messages are cut: only their first line is kept anyway. */
    char message[2048];
    va_list args;
    int written;

    (void)ctx;
    if (format == NULL || sink == NULL)
        return;
    va_start(args, format);
    written = vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (written < 0)
        return;
    sink(message);
}
