/* callengine widget: placeholder until the widget client lands. */
(function () { "use strict"; }());
