// Locale formatting for EJS templates, which QuickJS lacks: Number.prototype.toLocaleString,
// Intl.NumberFormat, Date.prototype.toLocaleString/-DateString/-TimeString and
// Intl.DateTimeFormat, giving what Node (full ICU) gives for the locales ru and en-US.
// Other locales are formatted as en-US; options this file does not implement are refused
// with a RangeError rather than ignored. Evaluated in every render's fresh context.
(function () {
  'use strict';
  var NBSP = '\u00a0';

  var LOCALES = {
    'en-US': {
      decimal: '.', group: ',', nan: 'NaN', percentSpace: '', currencyBefore: true, at: ' at ',
      months: {
        long: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
          'September', 'October', 'November', 'December'],
        short: ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'],
        narrow: ['J', 'F', 'M', 'A', 'M', 'J', 'J', 'A', 'S', 'O', 'N', 'D']
      },
      weekdays: {
        long: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'],
        short: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'],
        narrow: ['S', 'M', 'T', 'W', 'T', 'F', 'S']
      }
    },
    ru: {
      decimal: ',', group: NBSP, nan: 'не' + NBSP + 'число', percentSpace: NBSP,
      currencyBefore: false, at: ' в ',
      // Months in a date ("6 мая") and on their own ("май").
      months: {
        long: ['января', 'февраля', 'марта', 'апреля', 'мая', 'июня', 'июля', 'августа',
          'сентября', 'октября', 'ноября', 'декабря'],
        short: ['янв.', 'февр.', 'мар.', 'апр.', 'мая', 'июн.', 'июл.', 'авг.', 'сент.', 'окт.',
          'нояб.', 'дек.'],
        narrow: ['Я', 'Ф', 'М', 'А', 'М', 'И', 'И', 'А', 'С', 'О', 'Н', 'Д']
      },
      standaloneMonths: {
        long: ['январь', 'февраль', 'март', 'апрель', 'май', 'июнь', 'июль', 'август',
          'сентябрь', 'октябрь', 'ноябрь', 'декабрь'],
        short: ['янв.', 'февр.', 'март', 'апр.', 'май', 'июнь', 'июль', 'авг.', 'сент.', 'окт.',
          'нояб.', 'дек.']
      },
      weekdays: {
        long: ['воскресенье', 'понедельник', 'вторник', 'среда', 'четверг', 'пятница', 'суббота'],
        short: ['вс', 'пн', 'вт', 'ср', 'чт', 'пт', 'сб'],
        narrow: ['В', 'П', 'В', 'С', 'Ч', 'П', 'С']
      }
    }
  };
  // Symbols by locale; any other currency is shown by its code.
  var CURRENCY_SYMBOLS = {
    RUB: { 'en-US': 'RUB', ru: '₽', narrow: '₽' },
    USD: { 'en-US': '$', ru: '$', narrow: '$' },
    EUR: { 'en-US': '€', ru: '€', narrow: '€' }
  };

  // The first of the requested locales whose language is ru or en; else en-US.
  function resolveLocale(locales) {
    var list = locales === undefined ? [] : typeof locales === 'string' ? [locales] : locales;
    for (var i = 0; i < list.length; i++) {
      var tag = list[i];
      if (typeof tag !== 'string' && (typeof tag !== 'object' || tag === null)) {
        throw new TypeError('Language ID should be string or object.');
      }
      var language = String(tag).split(/[-_]/)[0].toLowerCase();
      if (language === 'ru') return 'ru';
      if (language === 'en') return 'en-US';
    }
    return 'en-US';
  }

  function options(value) {
    if (value === undefined) return {};
    if (value === null) throw new TypeError('Cannot convert undefined or null to object');
    return Object(value);
  }

  function choice(opts, name, allowed, fallback) {
    var value = opts[name];
    if (value === undefined) return fallback;
    value = String(value);
    if (allowed.indexOf(value) < 0) {
      throw new RangeError('Value ' + value + ' out of range for Intl options property ' + name);
    }
    return value;
  }

  function integer(opts, name, min, max, fallback) {
    var value = opts[name];
    if (value === undefined) return fallback;
    value = Number(value);
    if (isNaN(value) || value < min || value > max) {
      throw new RangeError(name + ' value is out of range.');
    }
    return Math.floor(value);
  }

  // Options of ECMA-402 that this file does not implement: refused, never ignored.
  function refuseUnsupported(opts, names, what) {
    for (var i = 0; i < names.length; i++) {
      if (opts[names[i]] !== undefined) {
        throw new RangeError(what + ' option ' + names[i] + ' is not supported in notification templates');
      }
    }
  }

  function define(target, name, value) {
    Object.defineProperty(target, name, { value: value, writable: true, configurable: true });
  }

  // ---- numbers ----

  // A non-negative finite number as decimal digits and the position of the decimal point,
  // from the shortest representation that reads back as the same number (as ICU does).
  function decimalOf(x) {
    var m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(x));
    var digits = m[1] + (m[2] || '');
    var point = m[1].length + (m[3] ? Number(m[3]) : 0);
    while (digits.length > 1 && digits.charAt(0) === '0') {
      digits = digits.slice(1);
      point--;
    }
    return { digits: digits, point: point };
  }

  // Keeps `keep` leading digits, rounding half away from zero.
  function roundDigits(d, keep) {
    if (keep >= d.digits.length) return d;
    if (keep < 0) return { digits: '0', point: 1 };
    var up = d.digits.charAt(keep) >= '5';
    var digits = d.digits.slice(0, keep);
    var point = d.point;
    if (up) {
      var i = digits.length - 1;
      while (i >= 0 && digits.charAt(i) === '9') i--;
      if (i < 0) {
        digits = '1' + digits.replace(/9/g, '0');
        point++;
      } else {
        digits = digits.slice(0, i) + String(Number(digits.charAt(i)) + 1) + digits.slice(i + 1).replace(/9/g, '0');
      }
    }
    if (digits === '') return { digits: '0', point: 1 };
    return { digits: digits, point: point };
  }

  function groupDigits(integerPart, separator) {
    var out = '';
    for (var i = integerPart.length; i > 3; i -= 3) {
      out = separator + integerPart.slice(i - 3, i) + out;
    }
    return integerPart.slice(0, i) + out;
  }

  function NumberFormat(locales, opts) {
    if (!(this instanceof NumberFormat)) return new NumberFormat(locales, opts);
    opts = options(opts);
    refuseUnsupported(opts, ['notation', 'compactDisplay', 'unit', 'unitDisplay',
      'roundingIncrement', 'roundingMode', 'roundingPriority', 'trailingZeroDisplay'],
    'Intl.NumberFormat');
    var locale = resolveLocale(locales);
    var style = choice(opts, 'style', ['decimal', 'percent', 'currency', 'unit'], 'decimal');
    if (style === 'unit') refuseUnsupported({ style: style }, ['style'], 'Intl.NumberFormat');
    var currency = opts.currency;
    if (currency !== undefined) {
      currency = String(currency);
      if (!/^[A-Za-z]{3}$/.test(currency)) throw new RangeError('Invalid currency code : ' + currency);
      currency = currency.toUpperCase();
    }
    if (style === 'currency' && currency === undefined) {
      throw new TypeError('Currency code is required with currency style.');
    }
    var display = choice(opts, 'currencyDisplay', ['symbol', 'narrowSymbol', 'code', 'name'], 'symbol');
    if (display === 'name') refuseUnsupported({ currencyDisplay: display }, ['currencyDisplay'], 'Intl.NumberFormat');
    if (choice(opts, 'currencySign', ['standard', 'accounting'], 'standard') !== 'standard') {
      refuseUnsupported(opts, ['currencySign'], 'Intl.NumberFormat');
    }
    var minInteger = integer(opts, 'minimumIntegerDigits', 1, 21, 1);
    var defaultMin = style === 'currency' ? 2 : 0;
    var defaultMax = style === 'currency' ? 2 : style === 'percent' ? 0 : 3;
    var minSignificant = opts.minimumSignificantDigits;
    var maxSignificant = opts.maximumSignificantDigits;
    var significant = minSignificant !== undefined || maxSignificant !== undefined;
    if (significant) {
      minSignificant = integer(opts, 'minimumSignificantDigits', 1, 21, 1);
      maxSignificant = integer(opts, 'maximumSignificantDigits', minSignificant, 21, 21);
    }
    var minFraction = integer(opts, 'minimumFractionDigits', 0, 100, undefined);
    var maxFraction = integer(opts, 'maximumFractionDigits', 0, 100, undefined);
    if (minFraction === undefined && maxFraction === undefined) {
      minFraction = defaultMin;
      maxFraction = defaultMax;
    } else if (minFraction === undefined) {
      minFraction = Math.min(defaultMin, maxFraction);
    } else if (maxFraction === undefined) {
      maxFraction = Math.max(defaultMax, minFraction);
    } else if (minFraction > maxFraction) {
      throw new RangeError('maximumFractionDigits value is out of range.');
    }
    var grouping = opts.useGrouping;
    this._ = {
      locale: locale,
      style: style,
      currency: currency,
      currencyDisplay: display,
      signDisplay: choice(opts, 'signDisplay', ['auto', 'never', 'always', 'exceptZero', 'negative'], 'auto'),
      minInteger: minInteger,
      minFraction: minFraction,
      maxFraction: maxFraction,
      significant: significant,
      minSignificant: minSignificant,
      maxSignificant: maxSignificant,
      grouping: grouping === undefined || (grouping !== false && grouping !== 'false' && Boolean(grouping))
    };
  }

  function formatNumber(f, value) {
    var L = LOCALES[f.locale];
    var x = typeof value === 'bigint' ? value : Number(value);
    var negative = x < 0 || (x === 0 && 1 / x < 0);
    var zero = false;
    var body;
    if (typeof x === 'number' && isNaN(x)) {
      body = L.nan;
      negative = false;
    } else if (x === Infinity || x === -Infinity) {
      body = '∞';
    } else {
      var d = typeof x === 'bigint' ? decimalOf((negative ? -x : x).toString()) : decimalOf(Math.abs(x));
      if (f.style === 'percent') d = { digits: d.digits, point: d.point + 2 };
      var minFraction = f.minFraction;
      if (f.significant) {
        d = roundDigits(d, f.maxSignificant);
        var needed = f.minSignificant - d.digits.length;
        minFraction = Math.max(0, f.minSignificant - d.point);
        if (needed > 0) d = { digits: d.digits + new Array(needed + 1).join('0'), point: d.point };
      } else {
        d = roundDigits(d, d.point + f.maxFraction);
      }
      zero = /^0*$/.test(d.digits);
      var integerPart = d.point > 0
        ? (d.digits + new Array(Math.max(0, d.point - d.digits.length) + 1).join('0')).slice(0, d.point)
        : '0';
      var fraction = d.point >= 0 ? d.digits.slice(d.point) : new Array(-d.point + 1).join('0') + d.digits;
      while (fraction.length > minFraction && fraction.charAt(fraction.length - 1) === '0') {
        fraction = fraction.slice(0, -1);
      }
      while (fraction.length < minFraction) fraction += '0';
      integerPart = integerPart.replace(/^0+(?=\d)/, '');
      while (integerPart.length < f.minInteger) integerPart = '0' + integerPart;
      if (f.grouping) integerPart = groupDigits(integerPart, L.group);
      body = integerPart + (fraction ? L.decimal + fraction : '');
    }
    var sign = '';
    switch (f.signDisplay) {
      case 'auto': sign = negative ? '-' : ''; break;
      case 'always': sign = negative ? '-' : '+'; break;
      case 'exceptZero': sign = zero ? '' : negative ? '-' : '+'; break;
      case 'negative': sign = negative && !zero ? '-' : ''; break;
    }
    if (body === L.nan && f.signDisplay !== 'always') sign = '';
    if (f.style === 'percent') return sign + body + L.percentSpace + '%';
    if (f.style !== 'currency') return sign + body;
    var symbol = f.currency;
    var known = CURRENCY_SYMBOLS[f.currency];
    if (known && f.currencyDisplay === 'symbol') symbol = known[f.locale];
    if (known && f.currencyDisplay === 'narrowSymbol') symbol = known.narrow;
    if (!L.currencyBefore) return sign + body + NBSP + symbol;
    // ICU puts a no-break space between a symbol made of letters and a digit.
    var space = /[A-Za-z]$/.test(symbol) && /^\d/.test(body) ? NBSP : '';
    return sign + symbol + space + body;
  }

  Object.defineProperty(NumberFormat.prototype, 'format', {
    configurable: true,
    get: function () {
      var f = this._;
      return function (value) { return formatNumber(f, value); };
    }
  });
  define(NumberFormat.prototype, 'resolvedOptions', function () {
    var f = this._;
    var resolved = { locale: f.locale, numberingSystem: 'latn', style: f.style };
    if (f.style === 'currency') {
      resolved.currency = f.currency;
      resolved.currencyDisplay = f.currencyDisplay;
    }
    resolved.minimumIntegerDigits = f.minInteger;
    if (f.significant) {
      resolved.minimumSignificantDigits = f.minSignificant;
      resolved.maximumSignificantDigits = f.maxSignificant;
    } else {
      resolved.minimumFractionDigits = f.minFraction;
      resolved.maximumFractionDigits = f.maxFraction;
    }
    resolved.useGrouping = f.grouping ? 'auto' : false;
    resolved.signDisplay = f.signDisplay;
    return resolved;
  });

  // ---- dates ----

  var DATE_FIELDS = ['weekday', 'year', 'month', 'day'];
  var TIME_FIELDS = ['hour', 'minute', 'second'];

  // ECMA-402's ToDateTimeOptions: which fields a method shows when none are asked for.
  function dateTimeOptions(opts, required, defaults) {
    opts = Object.create(options(opts));
    var needDefaults = true;
    if (required === 'date' || required === 'any') {
      DATE_FIELDS.forEach(function (name) { if (opts[name] !== undefined) needDefaults = false; });
    }
    if (required === 'time' || required === 'any') {
      TIME_FIELDS.concat(['dayPeriod', 'fractionalSecondDigits']).forEach(function (name) {
        if (opts[name] !== undefined) needDefaults = false;
      });
    }
    if (opts.dateStyle !== undefined || opts.timeStyle !== undefined) needDefaults = false;
    if (required === 'date' && opts.timeStyle !== undefined) {
      throw new TypeError('Invalid option : timeStyle');
    }
    if (required === 'time' && opts.dateStyle !== undefined) {
      throw new TypeError('Invalid option : dateStyle');
    }
    if (needDefaults && (defaults === 'date' || defaults === 'all')) {
      opts.year = opts.month = opts.day = 'numeric';
    }
    if (needDefaults && (defaults === 'time' || defaults === 'all')) {
      opts.hour = opts.minute = opts.second = 'numeric';
    }
    return opts;
  }

  var STYLE_FIELDS = {
    'en-US': {
      short: { year: '2-digit', month: 'numeric', day: 'numeric' },
      medium: { year: 'numeric', month: 'short', day: 'numeric' },
      long: { year: 'numeric', month: 'long', day: 'numeric' },
      full: { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' }
    },
    ru: {
      short: { year: 'numeric', month: '2-digit', day: '2-digit' },
      medium: { year: 'numeric', month: 'short', day: 'numeric' },
      long: { year: 'numeric', month: 'long', day: 'numeric' },
      full: { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' }
    }
  };

  function DateTimeFormat(locales, opts) {
    if (!(this instanceof DateTimeFormat)) return new DateTimeFormat(locales, opts);
    this._ = dateTimeFormat(locales, dateTimeOptions(opts, 'any', 'date'));
  }

  function dateTimeFormat(locales, opts) {
    refuseUnsupported(opts, ['era', 'timeZoneName', 'dayPeriod', 'fractionalSecondDigits',
      'calendar', 'numberingSystem'], 'Intl.DateTimeFormat');
    var f = { locale: resolveLocale(locales), utc: false };
    var zone = opts.timeZone;
    if (zone !== undefined) {
      zone = String(zone);
      if (/^(utc|etc\/utc|gmt|etc\/gmt)$/i.test(zone)) {
        f.utc = true;
      } else {
        throw new RangeError('time zone ' + zone + ' is not supported in notification templates: use UTC, or leave timeZone out for the server\'s time');
      }
    }
    f.weekday = choice(opts, 'weekday', ['long', 'short', 'narrow'], undefined);
    f.year = choice(opts, 'year', ['numeric', '2-digit'], undefined);
    f.month = choice(opts, 'month', ['numeric', '2-digit', 'long', 'short', 'narrow'], undefined);
    f.day = choice(opts, 'day', ['numeric', '2-digit'], undefined);
    f.hour = choice(opts, 'hour', ['numeric', '2-digit'], undefined);
    f.minute = choice(opts, 'minute', ['numeric', '2-digit'], undefined);
    f.second = choice(opts, 'second', ['numeric', '2-digit'], undefined);
    var hour12 = opts.hour12 === undefined ? undefined : Boolean(opts.hour12);
    var cycle = choice(opts, 'hourCycle', ['h11', 'h12', 'h23', 'h24'], undefined);
    if (hour12 === undefined && cycle !== undefined && cycle !== 'h23') {
      refuseUnsupported(opts, ['hourCycle'], 'Intl.DateTimeFormat');
    }
    f.twelveHour = hour12 !== undefined ? hour12 : cycle === 'h23' ? false : f.locale === 'en-US';
    // en-US with hour12: false counts the hours 1 to 24 (ICU's choice for that option).
    f.endOfDay24 = f.locale === 'en-US' && hour12 === false;
    var dateStyle = choice(opts, 'dateStyle', ['full', 'long', 'medium', 'short'], undefined);
    var timeStyle = choice(opts, 'timeStyle', ['full', 'long', 'medium', 'short'], undefined);
    if (dateStyle !== undefined || timeStyle !== undefined) {
      DATE_FIELDS.concat(TIME_FIELDS).forEach(function (name) {
        if (f[name] !== undefined) {
          throw new TypeError('Can\'t set option ' + name + ' when ' + (dateStyle ? 'dateStyle' : 'timeStyle') + ' is used');
        }
      });
      if (timeStyle === 'full' || timeStyle === 'long') {
        throw new RangeError('Intl.DateTimeFormat option timeStyle ' + timeStyle + ' is not supported in notification templates');
      }
      if (dateStyle) {
        var fields = STYLE_FIELDS[f.locale][dateStyle];
        for (var name in fields) f[name] = fields[name];
      }
      if (timeStyle) {
        f.hour = f.locale === 'ru' ? '2-digit' : 'numeric';
        f.minute = '2-digit';
        if (timeStyle === 'medium') f.second = '2-digit';
      }
    }
    return f;
  }

  function pad2(n) { return n < 10 ? '0' + n : String(n); }
  function number(n, width) { return width === '2-digit' ? pad2(n) : String(n); }
  function yearText(y, width) { return width === '2-digit' ? pad2(((y % 100) + 100) % 100) : String(y); }

  function dateText(f, v) {
    var L = LOCALES[f.locale];
    var textual = f.month === 'long' || f.month === 'short' || f.month === 'narrow';
    var text;
    if (f.locale === 'ru') {
      var year = f.year ? yearText(v.year, f.year) + ' г.' : '';
      if (textual) {
        var standalone = (L.standaloneMonths[f.month] || L.months[f.month])[v.month];
        if (f.day) text = number(v.day, f.day) + ' ' + L.months[f.month][v.month] + (year ? ' ' + year : '');
        else text = standalone + (year ? ' ' + year : '');
      } else {
        // Day and month are two digits together, unless (without a weekday) one of them was
        // asked for as 2-digit and the other not.
        var plain = f.month && f.day && (f.weekday || f.month === f.day);
        var parts = [];
        if (f.day) parts.push(plain ? pad2(v.day) : number(v.day, f.day));
        if (f.month) parts.push(plain || (f.year && !f.day) ? pad2(v.month + 1) : number(v.month + 1, f.month));
        if (f.year) parts.push(yearText(v.year, f.year));
        text = parts.join('.');
      }
    } else if (textual) {
      var month = L.months[f.month][v.month];
      var day = f.day ? number(v.day, f.day) : '';
      var y = f.year ? yearText(v.year, f.year) : '';
      text = month + (day ? ' ' + day : '') + (day && y ? ', ' + y : y ? ' ' + y : '');
    } else {
      var numeric = [];
      if (f.month) numeric.push(number(v.month + 1, f.month));
      if (f.day) numeric.push(number(v.day, f.day));
      if (f.year) numeric.push(yearText(v.year, f.year));
      text = numeric.join('/');
    }
    if (f.weekday) {
      var weekday = L.weekdays[f.weekday][v.weekday];
      var dayOnly = f.day && !f.month && !f.year && f.locale === 'en-US';
      text = !text ? weekday : f.day && !dayOnly ? weekday + ', ' + text : text + ' ' + weekday;
    }
    return text;
  }

  function timeText(f, v) {
    if (!f.hour) {
      if (f.minute && f.second) return pad2(v.minute) + ':' + pad2(v.second);
      return f.minute ? String(v.minute) : f.second ? String(v.second) : '';
    }
    var hour;
    if (f.twelveHour) {
      // en-US counts 12, 1, ..., 11; ru 0, 1, ..., 11.
      hour = number(f.locale === 'en-US' ? (v.hour % 12 || 12) : v.hour % 12, f.hour);
    } else if (f.endOfDay24) {
      hour = pad2(v.hour || 24);
    } else if (f.locale === 'en-US') {
      hour = pad2(v.hour);
    } else {
      // ru: two digits unless the minutes and seconds asked for are all 2-digit.
      var minor = [f.minute, f.second].filter(Boolean);
      var twoDigits = f.hour === '2-digit' || (minor.length > 0 && minor.indexOf('numeric') >= 0);
      hour = twoDigits ? pad2(v.hour) : String(v.hour);
    }
    var text = hour + (f.minute ? ':' + pad2(v.minute) : '') + (f.second ? ':' + pad2(v.second) : '');
    return f.twelveHour ? text + ' ' + (v.hour < 12 ? 'AM' : 'PM') : text;
  }

  function formatDate(f, date) {
    var time = date === undefined ? Date.now() : Number(date);
    if (!isFinite(time)) throw new RangeError('Invalid time value');
    var d = new Date(time);
    var v = f.utc
      ? { year: d.getUTCFullYear(), month: d.getUTCMonth(), day: d.getUTCDate(), weekday: d.getUTCDay(),
        hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() }
      : { year: d.getFullYear(), month: d.getMonth(), day: d.getDate(), weekday: d.getDay(),
        hour: d.getHours(), minute: d.getMinutes(), second: d.getSeconds() };
    var datepart = dateText(f, v);
    var timepart = timeText(f, v);
    if (!datepart || !timepart) return datepart + timepart;
    if (f.weekday && !f.year && !f.month && !f.day) return datepart + ' ' + timepart;
    return datepart + (f.month === 'long' ? LOCALES[f.locale].at : ', ') + timepart;
  }

  Object.defineProperty(DateTimeFormat.prototype, 'format', {
    configurable: true,
    get: function () {
      var f = this._;
      return function (date) { return formatDate(f, date); };
    }
  });
  define(DateTimeFormat.prototype, 'resolvedOptions', function () {
    var f = this._;
    var resolved = { locale: f.locale, calendar: 'gregory', numberingSystem: 'latn',
      timeZone: f.utc ? 'UTC' : undefined };
    DATE_FIELDS.concat(TIME_FIELDS).forEach(function (name) {
      if (f[name] !== undefined) resolved[name] = f[name];
    });
    if (f.hour) resolved.hour12 = f.twelveHour;
    return resolved;
  });

  function dateMethod(required, defaults) {
    return function (locales, opts) {
      if (isNaN(this.getTime())) return 'Invalid Date';
      return formatDate(dateTimeFormat(locales, dateTimeOptions(opts, required, defaults)), this);
    };
  }

  var intl = {};
  define(intl, 'NumberFormat', NumberFormat);
  define(intl, 'DateTimeFormat', DateTimeFormat);
  define(globalThis, 'Intl', intl);
  define(Number.prototype, 'toLocaleString', function (locales, opts) {
    if (typeof this !== 'number' && !(this instanceof Number)) {
      throw new TypeError('Number.prototype.toLocaleString requires that \'this\' be a Number');
    }
    return formatNumber(new NumberFormat(locales, opts)._, Number(this));
  });
  if (typeof BigInt === 'function') {
    define(BigInt.prototype, 'toLocaleString', function (locales, opts) {
      return formatNumber(new NumberFormat(locales, opts)._, BigInt.prototype.valueOf.call(this));
    });
  }
  define(Date.prototype, 'toLocaleString', dateMethod('any', 'all'));
  define(Date.prototype, 'toLocaleDateString', dateMethod('date', 'date'));
  define(Date.prototype, 'toLocaleTimeString', dateMethod('time', 'time'));
})();
