// Renders cases with the real ejs package, for tests/template_ejs_differential.rs.
// stdin: a JSON array of {template, data} (data is JSON text); stdout: a JSON array of
// {ok: true, text} or {ok: false, error}.
'use strict';
const ejs = require('ejs');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const results = JSON.parse(input).map((c) => {
    try {
      // Three arguments, so that no notice field is taken for an ejs option.
      const text = ejs.render(c.template, JSON.parse(c.data), {});
      // As Node writes text out (UTF-8): a lone surrogate becomes U+FFFD.
      return { ok: true, text: Buffer.from(text, 'utf8').toString('utf8') };
    } catch (e) {
      return { ok: false, error: String(e && e.message) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
