// Applies the stored colour theme before the first paint. Load it in <head> without defer
// (it is tiny): console.js, which is deferred, would otherwise flash the wrong theme.
// "light" or "dark" set data-theme on <html>; no stored choice follows the system setting.
"use strict";
try {
  const theme = localStorage.getItem("wk-theme");
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
} catch (_) {
  // localStorage can be disabled; the system setting applies then.
}
