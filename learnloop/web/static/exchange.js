// The exchange page (/admin/exchange): the site takes no multipart uploads, so the chosen file
// is read here and sent base64-encoded in the form's data_b64 field, with its name.
(function () {
  var input = document.getElementById("exchange-file");
  if (!input) return;
  input.addEventListener("change", function () {
    var form = input.form;
    var file = input.files && input.files[0];
    form.elements["data_b64"].value = "";
    form.elements["filename"].value = "";
    if (!file) return;
    var reader = new FileReader();
    reader.onload = function () {
      var bytes = new Uint8Array(reader.result);
      var text = "";
      for (var i = 0; i < bytes.length; i += 0x8000) {
        text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      form.elements["data_b64"].value = btoa(text);
      form.elements["filename"].value = file.name;
      if (/\.zip$/i.test(file.name)) form.elements["format"].value = "qti";
      if (/\.json$/i.test(file.name)) form.elements["format"].value = "case";
    };
    reader.readAsArrayBuffer(file);
  });
})();
